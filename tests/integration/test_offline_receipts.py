"""``guard audit verify-receipts``: the console's receipts files checked offline with a key
the auditor holds, so that "can we prove it" never rests on scripts the audited server serves.
Each attack is a server that lies in the file it hands out."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from guard.api import create_app
from guard.api.keys import ApiKeyStore, Role
from guard.audit.checkpoint import CheckpointVerifier, verifier_key
from guard.audit.log import PUBLIC_KEY_FILE
from guard.audit.receipt_files import check_receipt_file
from guard.cli import app as cli
from guard.errors import InvalidInput
from guard.pipeline import Guard
from tests.support.guards import GuardFactory

DECISION = "dec_" + "7" * 32


@pytest.fixture
def signed_in(make_guard: GuardFactory) -> Iterator[tuple[TestClient, Guard, str]]:
    """A console signed in as acme's auditor over a log with one decision of a subject, then
    its erasure; and the id of that subject."""
    guard = make_guard()
    subject = guard.registry.create_subject("acme", display_name="Offline")
    ref = guard.registry.subject_ref(subject.id, "acme")
    for n, verdict in enumerate(("allow", "deny")):
        guard.audit.append(
            {
                "v": 2,
                "kind": "decision",
                "time": f"2026-12-06T1{n}:00:00+00:00",
                "tenant": "acme",
                "operation": "restyle",
                "stage": "input",
                "decision_id": DECISION if n == 0 else f"dec_{n:032x}",
                "verdict": verdict,
                "reason_codes": [] if verdict == "allow" else ["no_consent"],
                "policy": {"id": "default", "version": "1"},
                "subject_refs": [ref],
            }
        )
    token = ApiKeyStore(guard.db).create(tenant="acme", role=Role.AUDITOR).token
    with TestClient(create_app(guard=guard), base_url="https://testserver") as client:
        page = client.get("/console/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        client.post("/console/sign-in", data={"key": token, "csrf": csrf.group(1)})
        yield client, guard, subject.id


def _verify(tmp_path: Path, document: Any, key: str) -> tuple[int, str]:
    receipts, key_file = tmp_path / "receipts.json", tmp_path / "pinned.vkey"
    receipts.write_text(json.dumps(document))
    key_file.write_text(key)
    result = CliRunner().invoke(
        cli, ["audit", "verify-receipts", str(receipts), "--key", str(key_file)]
    )
    # An answer, never a crash: the runner keeps an uncaught exception out of the output.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result.exit_code, result.output


def _key(guard: Guard) -> str:
    return (guard.settings.audit_keys_dir / PUBLIC_KEY_FILE).read_text()


def test_a_decisions_receipt_and_a_subjects_receipts_verify_offline(
    signed_in: tuple[TestClient, Guard, str], tmp_path: Path
) -> None:
    client, guard, subject_id = signed_in
    receipt = client.get(f"/console/decisions/{DECISION}/receipt.json").json()
    code, output = _verify(tmp_path, receipt, _key(guard))
    assert code == 0, output
    assert f"decision_id={DECISION}" in output and "verdict=allow" in output
    receipts = client.get(f"/console/subjects/{subject_id}/receipts.json").json()
    code, output = _verify(tmp_path, receipts, _key(guard))
    assert code == 0, output
    # subject_created, then the two decisions
    assert output.count("proven entry") == 3 and "OK: 3 entries" in output


def test_a_file_that_says_another_thing_than_was_logged_fails(
    signed_in: tuple[TestClient, Guard, str], tmp_path: Path
) -> None:
    client, guard, _ = signed_in
    receipt = client.get(f"/console/decisions/{DECISION}/receipt.json").json()
    receipt["entry_text"] = receipt["entry_text"].replace('"allow"', '"deny"')
    code, output = _verify(tmp_path, receipt, _key(guard))
    assert code == 1 and "NOT PROVEN" in output


def test_a_server_key_the_auditor_does_not_hold_proves_nothing(
    signed_in: tuple[TestClient, Guard, str], tmp_path: Path
) -> None:
    """A lying server's own key signs its forged checkpoint, and it serves that key: checked
    with the key the auditor pinned, nothing is proven, and the mismatch is said."""
    client, _, _ = signed_in
    receipt = client.get(f"/console/decisions/{DECISION}/receipt.json").json()
    other = verifier_key("likeness-guard-audit", Ed25519PrivateKey.generate().public_key())
    code, output = _verify(tmp_path, receipt, other)
    assert code == 1 and "NOT PROVEN" in output
    assert "another verifier key than yours" in output


def test_entries_proven_against_two_checkpoints_fail(
    signed_in: tuple[TestClient, Guard, str], tmp_path: Path
) -> None:
    client, guard, subject_id = signed_in
    before = client.get(f"/console/subjects/{subject_id}/receipts.json").json()
    guard.audit.append({"v": 2, "kind": "policy_in_force", "time": "2026-12-06T12:00:00+00:00"})
    after = client.get(f"/console/subjects/{subject_id}/receipts.json").json()
    mixed = {**after, "entries": [before["entries"][0], after["entries"][1]]}
    code, output = _verify(tmp_path, mixed, _key(guard))
    assert code == 1 and "2 different checkpoints" in output


def test_a_file_that_is_not_a_receipts_file_is_refused(
    signed_in: tuple[TestClient, Guard, str], tmp_path: Path
) -> None:
    _, guard, _ = signed_in
    code, output = _verify(tmp_path, {"size": 3}, _key(guard))
    assert code == 2 and "not a receipts file" in output


@pytest.mark.parametrize(
    "crafted",
    [
        {"entries": [{"index": "[/x]", "entry_text": "{}", "receipt": {}}]},  # markup
        {"entries": [{"index": 0, "entry_text": "\ud800", "receipt": {}}]},  # lone surrogate
        {"entries": [1, None, "x"]},
        {"entry_text": "{}", "receipt": {"leaf_index": True}, "releases": {"a": 1}},
        {"entries": [{"receipt": {"leaf_index": 10**40, "leaf_hash": 3}}]},
    ],
)
def test_a_crafted_file_is_refused_in_plain_words(
    signed_in: tuple[TestClient, Guard, str], tmp_path: Path, crafted: dict[str, Any]
) -> None:
    _, guard, _ = signed_in
    code, output = _verify(tmp_path, crafted, _key(guard))
    assert code in (1, 2) and "Traceback" not in output, output
    assert "OK:" not in output


def test_an_entry_cannot_print_a_line_of_its_own(
    signed_in: tuple[TestClient, Guard, str], tmp_path: Path
) -> None:
    """A logged entry whose text carries a line break and markup is printed on its own line,
    as text: it cannot add a line such as a false "OK" to the answer."""
    client, guard, subject_id = signed_in
    guard.audit.append(
        {
            "v": 2,
            "kind": "decision",
            "time": "2026-12-06T13:00:00+00:00",
            "tenant": "acme",
            "operation": "restyle\n[green]OK[/green]: 99 entries [/x]",
            "decision_id": "dec_" + "9" * 32,
            "verdict": "allow",
            "subject_refs": [guard.registry.subject_ref(subject_id, "acme")],
        }
    )
    receipts = client.get(f"/console/subjects/{subject_id}/receipts.json").json()
    code, output = _verify(tmp_path, receipts, _key(guard))
    assert code == 0, output
    assert not any(line.startswith("OK: 99") for line in output.splitlines()), output
    assert "[green]OK[/green]: 99 entries [/x]" in output  # shown as the text it is


def test_crafted_members_beside_real_receipts_are_plain_refusals(
    signed_in: tuple[TestClient, Guard, str], tmp_path: Path
) -> None:
    client, guard, subject_id = signed_in
    receipts = client.get(f"/console/subjects/{subject_id}/receipts.json").json()
    receipts["entries"][0]["index"] = "[/x]"  # markup in what the file lists
    receipts["entries"][1]["entry_text"] = "\ud800"  # no stored entry can be this text
    code, output = _verify(tmp_path, receipts, _key(guard))
    assert code == 1, output
    assert "listed as entry '[/x]'" in output and "not valid Unicode" in output


def test_the_same_entry_twice_is_refused(
    signed_in: tuple[TestClient, Guard, str], tmp_path: Path
) -> None:
    client, guard, subject_id = signed_in
    receipts = client.get(f"/console/subjects/{subject_id}/receipts.json").json()
    receipts["entries"].append(receipts["entries"][0])
    code, output = _verify(tmp_path, receipts, _key(guard))
    assert code == 1 and "more than once" in output


def test_unreadable_files_are_clear_errors(
    signed_in: tuple[TestClient, Guard, str], tmp_path: Path
) -> None:
    _, guard, _ = signed_in
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    key = tmp_path / "key.vkey"
    key.write_text(_key(guard))
    run = CliRunner().invoke
    result = run(cli, ["audit", "verify-receipts", str(nested), "--key", str(key)])
    assert result.exit_code == 2 and "is not JSON" in result.output
    key.write_bytes(b"\xff\xfe not a key")
    receipts = tmp_path / "r.json"
    receipts.write_text("{}")
    result = run(cli, ["audit", "verify-receipts", str(receipts), "--key", str(key)])
    assert result.exit_code == 2 and "not UTF-8" in result.output


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "entries",
                    "entry_text",
                    "receipt",
                    "releases",
                    "index",
                    "leaf_index",
                    "leaf_hash",
                    "checkpoint",
                    "inclusion_proof",
                    "verifier_key",
                    "x",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(document=json_values)
def test_any_json_is_a_report_or_a_clear_refusal_never_ok(document: Any) -> None:
    verifier = CheckpointVerifier("likeness-guard-audit", Ed25519PrivateKey.generate().public_key())
    try:
        report = check_receipt_file(document, verifier)
    except InvalidInput:
        return
    assert not report.ok
