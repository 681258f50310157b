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
from typer.testing import CliRunner

from guard.api import create_app
from guard.api.keys import ApiKeyStore, Role
from guard.audit.checkpoint import verifier_key
from guard.audit.log import PUBLIC_KEY_FILE
from guard.cli import app as cli
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
