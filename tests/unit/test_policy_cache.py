"""The policy source parses a file once per change of its stat (inode, size, mtime, ctime):
a broken file stays broken (``Unavailable``, so decisions deny ``unavailable``) at the cost of
a ``stat`` per request, not a parse (issue 17: a 2 MB broken file cost 4 s per request), and
any change to it, even one that keeps its size and modification time, is read."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from guard.config import DEFAULT_POLICY_FILE
from guard.errors import Unavailable
from guard.policy import PolicySource
from guard.policy import model as policy_model

VALID = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
VERSION = 'version: "2026-12-02.1"'
assert VERSION in VALID


def _valid(version: str) -> str:
    """The default policy under another version of the same length."""
    assert len(version) == len("2026-12-02.1")
    return VALID.replace(VERSION, f'version: "{version}"')


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Each parse the policy source asks for, by path."""
    seen: list[Path] = []
    parse = policy_model.load_policy

    def counted(path: Path) -> policy_model.Policy:
        seen.append(path)
        return parse(path)

    monkeypatch.setattr(policy_model, "load_policy", counted)
    return seen


def test_a_valid_policy_is_parsed_once(tmp_path: Path, parses: list[Path]) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(VALID)
    source = PolicySource(path)
    first = source.current()
    assert all(source.current() is first for _ in range(20))
    assert len(parses) == 1


def test_a_broken_policy_stays_broken_without_a_parse_until_it_changes(
    tmp_path: Path, parses: list[Path]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("id: x\nversion: '1'\nrules: [{id: a, require: {no_such: 1}}]\n")
    source = PolicySource(path)
    messages = set()
    for _ in range(20):
        with pytest.raises(Unavailable, match="GUARD_POLICY_FILE") as raised:
            source.current()
        messages.add(raised.value.message)
    assert len(parses) == 1
    assert len(messages) == 1  # the same problems named each time

    path.write_text(VALID)  # fixed: read on the next request, no restart
    assert source.current().id == "default"
    assert len(parses) == 2


def test_a_large_broken_policy_costs_a_stat_per_request(tmp_path: Path, parses: list[Path]) -> None:
    path = tmp_path / "policy.yaml"
    description = "".join(f"  line {n} of a long description\n" for n in range(20_000))
    path.write_text(f"id: big\nversion: '1'\ndescription: >\n{description}rules: [{{id: a}}]\n")
    source = PolicySource(path)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        source.current()
    one_parse = time.monotonic() - started
    started = time.monotonic()
    for _ in range(100):
        with pytest.raises(Unavailable):
            source.current()
    assert time.monotonic() - started < max(1.0, one_parse)  # 100 parses would take 100 times
    assert len(parses) == 1


def test_a_file_replaced_with_the_same_size_and_mtime_is_read_again(
    tmp_path: Path, parses: list[Path]
) -> None:
    """A deploy that renames a new file into place (a new inode), or rewrites it in place, is
    read even when size and modification time come out equal (coarse clocks, copies that keep
    mtimes)."""
    path = tmp_path / "policy.yaml"
    path.write_text(_valid("2026-12-02.A"))
    source = PolicySource(path)
    assert source.current().version == "2026-12-02.A"
    kept = path.stat()

    staged = tmp_path / "staged.yaml"
    staged.write_text(_valid("2026-12-02.B"))
    os.utime(staged, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    os.replace(staged, path)
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (kept.st_size, kept.st_mtime_ns)
    assert source.current().version == "2026-12-02.B"

    kept = path.stat()
    path.write_text(_valid("2026-12-02.C"))  # in place: same inode, ctime moves
    os.utime(path, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    assert source.current().version == "2026-12-02.C"
    assert len(parses) == 3


def test_a_missing_policy_is_unavailable_until_it_appears(
    tmp_path: Path, parses: list[Path]
) -> None:
    path = tmp_path / "policy.yaml"
    source = PolicySource(path)
    for _ in range(3):
        with pytest.raises(Unavailable, match="cannot be read"):
            source.current()
    assert parses == []
    path.write_text(VALID)
    assert source.current().id == "default"
