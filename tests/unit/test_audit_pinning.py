"""Pinned audit history: an export or a checkpoint must extend a checkpoint seen earlier, the
origin line names one deployment's log, and a failed export check says what is wrong.

Real Ed25519 keys and real logs on SQLite (the test's own database, and a second one for a
fork: another history signed by the same key)."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from guard.audit import (
    LEGACY_ORIGIN,
    AuditLog,
    Checkpoint,
    CheckpointSigner,
    CheckpointVerifier,
    Verdict,
    check_consistency_answer,
    check_extension,
    checkpoint_note,
    export_log,
    verify_export,
)
from guard.audit.export import LISTED_PROBLEMS
from guard.audit.merkle import MemoryTree, consistency_proof, root_hash
from guard.cli import app
from guard.db import Database
from guard.errors import InvalidInput

NAME = "guard.test"
WHEN = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
runner = CliRunner()


def entry(i: int, history: str = "a") -> dict[str, object]:
    return {"kind": "decision", "n": i, "history": history}


@pytest.fixture
def signer() -> CheckpointSigner:
    return CheckpointSigner(NAME, Ed25519PrivateKey.generate())


@pytest.fixture
def verifier(signer: CheckpointSigner) -> CheckpointVerifier:
    return CheckpointVerifier.from_key_string(signer.verifier_key)


@pytest.fixture
def log(database_url: str, signer: CheckpointSigner) -> AuditLog:
    return AuditLog(Database(database_url), signer)


@pytest.fixture
def other_log(sqlite_template: Path, tmp_path: Path, signer: CheckpointSigner) -> AuditLog:
    """A second log under the same key: what a fork looks like to anyone holding the key."""
    path = tmp_path / "other.db"
    shutil.copyfile(sqlite_template, path)
    return AuditLog(Database(f"sqlite:///{path}"), signer)


def grow(log: AuditLog, size: int, history: str = "a") -> None:
    for i in range(log.size(), size):
        log.append(entry(i, history))


def exported(log: AuditLog, path: Path) -> Path:
    export_log(log, path)
    return path


def pin(log: AuditLog, verifier: CheckpointVerifier, size: int) -> Checkpoint:
    return verifier.verify(log.checkpoint(size))


# --- the origin -------------------------------------------------------------------------------


def test_the_origin_differs_between_two_deployments_keys(log: AuditLog) -> None:
    first = CheckpointSigner(NAME, Ed25519PrivateKey.generate())
    second = CheckpointSigner(NAME, Ed25519PrivateKey.generate())
    assert first.origin != second.origin
    for signer in (first, second):
        assert re.fullmatch(r"likeness-guard/[0-9a-f]{16}", signer.origin)
        assert CheckpointVerifier.from_key_string(signer.verifier_key).origin == signer.origin
    log.append(entry(0))
    assert log.checkpoint().startswith(f"{log.origin}\n1\n")
    assert log.origin != LEGACY_ORIGIN


def test_old_checkpoints_under_the_shared_origin_still_verify(
    signer: CheckpointSigner, verifier: CheckpointVerifier
) -> None:
    root = bytes(range(32))
    legacy = signer.sign(Checkpoint(LEGACY_ORIGIN, 7, root, WHEN))
    assert verifier.verify(legacy) == Checkpoint(LEGACY_ORIGIN, 7, root, WHEN)
    foreign = signer.sign(Checkpoint("likeness-guard/0123456789abcdef", 7, root, WHEN))
    with pytest.raises(InvalidInput, match="names the log"):
        verifier.verify(foreign)


# --- one checkpoint against another -----------------------------------------------------------


def _tree_checkpoints(
    signer: CheckpointSigner, history: str, size: int
) -> tuple[MemoryTree, dict[int, Checkpoint]]:
    tree = MemoryTree(json.dumps(entry(i, history)).encode() for i in range(size))
    heads = {n: Checkpoint(signer.origin, n, root_hash(tree, n), WHEN) for n in range(1, size + 1)}
    return tree, heads


def test_check_extension_tells_extension_rollback_and_fork(signer: CheckpointSigner) -> None:
    tree, heads = _tree_checkpoints(signer, "a", 12)
    _, forked = _tree_checkpoints(signer, "b", 12)
    extends = check_extension(heads[5], heads[12], consistency_proof(tree, 5, 12))
    assert extends.ok and extends.verdict is Verdict.EXTENDS
    assert check_extension(heads[12], heads[12], []).verdict is Verdict.SAME
    rollback = check_extension(heads[12], heads[5], [])
    assert not rollback.ok and rollback.verdict is Verdict.ROLLBACK
    assert "entries 5..11 are gone" in rollback.message
    same_size = check_extension(heads[12], forked[12], [])
    assert same_size.verdict is Verdict.FORK and "different roots" in same_size.message
    prefix = check_extension(forked[5], heads[12], consistency_proof(tree, 5, 12))
    assert prefix.verdict is Verdict.FORK and "does not extend" in prefix.message
    moved = Checkpoint(LEGACY_ORIGIN, 13, heads[12].root, WHEN)
    assert check_extension(heads[12], moved, []).verdict is Verdict.ORIGIN_CHANGED
    upgraded = Checkpoint(LEGACY_ORIGIN, 5, heads[5].root, WHEN)
    assert check_extension(upgraded, heads[12], consistency_proof(tree, 5, 12)).ok


def test_the_services_consistency_answer_checks_offline(
    log: AuditLog, other_log: AuditLog, verifier: CheckpointVerifier
) -> None:
    grow(log, 30)
    held = pin(log, verifier, 11)
    grow(log, 45)
    answer = log.prove_consistency(11).to_dict()
    assert answer["new_size"] == 45 and answer["checkpoint"] == log.checkpoint(45)
    assert check_consistency_answer(held, answer, verifier).verdict is Verdict.EXTENDS
    grow(other_log, 45, history="b")
    forked = other_log.prove_consistency(11).to_dict()
    assert check_consistency_answer(held, forked, verifier).verdict is Verdict.FORK
    tampered = {**answer, "proof": answer["proof"][:-1]}
    assert check_consistency_answer(held, tampered, verifier).verdict is Verdict.FORK
    with pytest.raises(InvalidInput, match="from size 11 to 45; one from 12"):
        check_consistency_answer(pin(log, verifier, 12), answer, verifier)


def test_a_checkpoint_file_may_be_the_note_or_its_json(log: AuditLog) -> None:
    log.append(entry(0))
    note = log.checkpoint()
    assert checkpoint_note(note) == note
    assert checkpoint_note(json.dumps({"size": 1, "checkpoint": note})) == note
    with pytest.raises(InvalidInput, match="no signed 'checkpoint'"):
        checkpoint_note('{"size": 1}')


# --- an export against a pinned checkpoint ----------------------------------------------------


def test_a_clean_extension_of_the_pin_verifies(
    log: AuditLog, verifier: CheckpointVerifier, tmp_path: Path
) -> None:
    grow(log, 20)
    pinned = pin(log, verifier, 20)
    grow(log, 60)
    report = verify_export(exported(log, tmp_path / "audit.jsonl"), verifier, pinned=pinned)
    assert report.ok and report.entries == 60 and report.pinned_size == 20, report.problems
    at_its_size = verify_export(tmp_path / "audit.jsonl", verifier, pinned=pin(log, verifier, 60))
    assert at_its_size.ok


def _drop_last(path: Path, count: int, out: Path) -> Path:
    """The user's attack: drop the last ``count`` entries and close the file with the
    checkpoint signed at the new size (the last kept entry's), so it verifies on its own."""
    lines = path.read_text().splitlines()[:-1]
    kept = lines[:-count]
    latest = json.loads(kept[-1])["checkpoint"]
    out.write_text("\n".join([*kept, json.dumps({"latest_checkpoint": latest})]) + "\n")
    return out


def test_a_truncated_export_fails_against_the_pin(
    log: AuditLog, verifier: CheckpointVerifier, tmp_path: Path
) -> None:
    grow(log, 60)
    pinned = pin(log, verifier, 60)
    cut = _drop_last(exported(log, tmp_path / "audit.jsonl"), 40, tmp_path / "cut.jsonl")
    assert verify_export(cut, verifier).ok  # signed throughout: alone it cannot tell
    report = verify_export(cut, verifier, pinned=pinned)
    assert not report.ok and report.first_bad_index == 20
    assert report.problems == [
        "truncated or rolled back: the export has 20 entries, the pinned checkpoint covers 60: "
        "entries 20..59 are missing"
    ]


def test_a_rolled_back_export_fails_against_the_pin(
    log: AuditLog, verifier: CheckpointVerifier, tmp_path: Path
) -> None:
    grow(log, 25)
    older = exported(log, tmp_path / "older.jsonl")  # a genuine export, kept from before
    grow(log, 50)
    report = verify_export(older, verifier, pinned=pin(log, verifier, 50))
    assert not report.ok and "rolled back" in report.problems[0]
    assert verify_export(older, verifier, pinned=pin(log, verifier, 25)).ok


def test_a_fork_under_the_same_key_fails_against_the_pin(
    log: AuditLog, other_log: AuditLog, verifier: CheckpointVerifier, tmp_path: Path
) -> None:
    for each in (log, other_log):
        grow(each, 10)  # a shared beginning ...
    grow(log, 30)
    grow(other_log, 30, history="b")  # ... then two histories under one key
    assert verify_export(exported(other_log, tmp_path / "b.jsonl"), verifier).ok
    same_size = verify_export(tmp_path / "b.jsonl", verifier, pinned=pin(log, verifier, 30))
    assert not same_size.ok and same_size.problems[0].startswith("fork: the export's first 30")
    grow(other_log, 50, history="b")
    longer = exported(other_log, tmp_path / "b50.jsonl")
    prefix = verify_export(longer, verifier, pinned=pin(log, verifier, 20))
    assert not prefix.ok and prefix.problems[0].startswith("fork:")
    assert verify_export(longer, verifier, pinned=pin(log, verifier, 10)).ok  # shared part


def test_verify_since_on_the_command_line(
    log: AuditLog, other_log: AuditLog, verifier: CheckpointVerifier, tmp_path: Path
) -> None:
    assert log.signer is not None
    key = tmp_path / "checkpoint.vkey"
    key.write_text(log.signer.verifier_key + "\n")
    grow(log, 12)
    (tmp_path / "pin.json").write_text(json.dumps({"checkpoint": log.checkpoint(12)}))
    grow(log, 20)
    export = str(exported(log, tmp_path / "audit.jsonl"))
    args = ["audit", "verify", export, "--key", str(key), "--since"]
    result = runner.invoke(app, [*args, str(tmp_path / "pin.json")])
    assert result.exit_code == 0, result.output
    assert "OK: 20 entries, 20 signed checkpoints; extends the pinned checkpoint at size 12" in (
        result.output
    )
    grow(other_log, 20, history="b")
    (tmp_path / "fork.note").write_text(other_log.checkpoint(20))
    result = runner.invoke(app, [*args, str(tmp_path / "fork.note")])
    assert result.exit_code == 1 and "fork: the export's first 20 entries" in result.output
    assert "None" not in result.output
    stranger = CheckpointSigner(NAME, Ed25519PrivateKey.generate())
    (tmp_path / "stranger.note").write_text(
        stranger.sign(Checkpoint(stranger.origin, 1, bytes(32), WHEN))
    )
    result = runner.invoke(app, [*args, str(tmp_path / "stranger.note")])
    said = " ".join(result.output.split())  # the console wraps long paths at any width
    assert result.exit_code == 2 and "the pinned checkpoint" in said
    assert "no signature by guard.test" in said


# --- what a failed verification says ----------------------------------------------------------


def test_after_many_problems_the_closing_checkpoint_is_still_checked(
    log: AuditLog, verifier: CheckpointVerifier, tmp_path: Path
) -> None:
    grow(log, 40)
    lines = exported(log, tmp_path / "audit.jsonl").read_text().splitlines()
    for i in range(5, 35):  # 30 altered entries: more problems than are listed
        lines[i] = lines[i].replace('"history": "a"', '"history": "z"')
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    report = verify_export(tmp_path / "bad.jsonl", verifier)
    assert not report.ok and report.first_bad_index == 5
    assert len(report.problems) == LISTED_PROBLEMS + 1 and report.unlisted > 0
    # Read to the end: the closing line was there all along, and what it says is checked.
    assert report.latest_size == 40
    assert report.problems[-1] == "the latest checkpoint's root does not match the entries"
    key = tmp_path / "checkpoint.vkey"
    assert log.signer is not None
    key.write_text(log.signer.verifier_key)
    result = runner.invoke(app, ["audit", "verify", str(tmp_path / "bad.jsonl"), "--key", str(key)])
    assert result.exit_code == 1 and "first bad entry: 5" in result.output
    assert f"… and {report.unlisted} more problems with entries, not listed" in result.output
    assert "no latest checkpoint" not in result.output


@pytest.mark.parametrize(
    ("cut", "says", "first_bad"),
    [
        ("closing-line", "the export stops after entry 14 without its closing", None),
        ("mid-line", "line 16 is not JSON", 15),
        (
            "entries",
            "truncated: the latest checkpoint covers 20 entries, the file has 12: "
            "entries 12..19 are missing",
            12,
        ),
    ],
)
def test_a_cut_off_export_says_what_is_wrong(
    log: AuditLog,
    verifier: CheckpointVerifier,
    tmp_path: Path,
    cut: str,
    says: str,
    first_bad: int | None,
) -> None:
    grow(log, 20)
    lines = exported(log, tmp_path / "audit.jsonl").read_text().splitlines()
    if cut == "closing-line":
        kept = lines[:15]
    elif cut == "mid-line":
        kept = [*lines[:15], lines[15][:40]]
    else:
        kept = [*lines[:12], lines[-1]]
    (tmp_path / "cut.jsonl").write_text("\n".join(kept) + "\n")
    report = verify_export(tmp_path / "cut.jsonl", verifier)
    assert not report.ok and report.first_bad_index == first_bad
    assert any(says in problem for problem in report.problems), report.problems
    key = tmp_path / "checkpoint.vkey"
    assert log.signer is not None
    key.write_text(log.signer.verifier_key)
    result = runner.invoke(app, ["audit", "verify", str(tmp_path / "cut.jsonl"), "--key", str(key)])
    assert result.exit_code == 1 and says in result.output
    assert "first bad entry: None" not in result.output
