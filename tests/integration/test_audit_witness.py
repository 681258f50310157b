"""``guard audit witness``: keeps the last checkpoint it saw and accepts only extensions of it,
from files and from the running service; a rollback or a fork (another history under the same
key) is refused loudly and leaves the state as it was.

Real Ed25519 keys, real logs on SQLite, and for the service a real uvicorn server."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from guard.api import ApiKeyStore, Role, create_app
from guard.audit import (
    PUBLIC_KEY_FILE,
    AuditLog,
    CheckpointSigner,
    CheckpointVerifier,
    GivenCheckpoint,
    Verdict,
    Witness,
    export_log,
)
from guard.audit.index import AuditIndexRow, AuditReasonIndexRow, AuditRefIndexRow
from guard.audit.log import AuditCheckpointRow, AuditEntryRow, AuditNodeRow, AuditStateRow
from guard.cli import app
from guard.db import Database
from guard.errors import Conflict, InvalidInput
from tests.support.guards import GuardFactory
from tests.support.live import serve

NAME = "guard.test"
runner = CliRunner()


def grow(log: AuditLog, size: int, history: str = "a") -> None:
    for i in range(log.size(), size):
        log.append({"kind": "decision", "n": i, "history": history})


def offer(log: AuditLog, held: int, size: int | None = None) -> GivenCheckpoint:
    """The log's checkpoint (at ``size``, default latest) and its proof from ``held``, as a
    witness fed from files gets them."""
    answer = log.prove_consistency(held, size).to_dict()
    return GivenCheckpoint(answer["checkpoint"], answer)


@pytest.fixture
def signer() -> CheckpointSigner:
    return CheckpointSigner(NAME, Ed25519PrivateKey.generate())


@pytest.fixture
def log(database_url: str, signer: CheckpointSigner) -> AuditLog:
    return AuditLog(Database(database_url), signer)


@pytest.fixture
def other_log(sqlite_template: Path, tmp_path: Path, signer: CheckpointSigner) -> AuditLog:
    """Another history signed by the same key."""
    path = tmp_path / "other.db"
    shutil.copyfile(sqlite_template, path)
    return AuditLog(Database(f"sqlite:///{path}"), signer)


@pytest.fixture
def witness(tmp_path: Path, signer: CheckpointSigner) -> Witness:
    return Witness(
        tmp_path / "witness" / "state", CheckpointVerifier.from_key_string(signer.verifier_key)
    )


def test_the_witness_accepts_a_clean_extension_and_keeps_it(
    log: AuditLog, witness: Witness
) -> None:
    grow(log, 10)
    with pytest.raises(InvalidInput, match=r"no witness state .* --init"):
        witness.observe(offer(log, 0))
    first = witness.observe(offer(log, 0), init=True)
    assert first.ok and first.check is None and first.current.size == 10
    assert witness.state.read_text() == log.checkpoint(10)
    with pytest.raises(Conflict, match="exists; --init would replace it"):
        witness.observe(offer(log, 10), init=True)
    grow(log, 37)
    seen = witness.observe(offer(log, 10))
    assert seen.ok and seen.check is not None and seen.check.verdict is Verdict.EXTENDS
    assert witness.state.read_text() == log.checkpoint(37)
    again = witness.observe(offer(log, 37))
    assert again.ok and again.check is not None and again.check.verdict is Verdict.SAME
    grow(log, 40)
    with pytest.raises(InvalidInput, match="give the consistency proof"):
        witness.observe(GivenCheckpoint(log.checkpoint()))
    assert not witness.evidence_path.exists()


def test_the_witness_rejects_a_rollback(log: AuditLog, witness: Witness) -> None:
    grow(log, 30)
    witness.observe(offer(log, 0), init=True)
    seen = witness.observe(GivenCheckpoint(log.checkpoint(18)))  # genuine, but older
    assert not seen.ok and seen.check is not None and seen.check.verdict is Verdict.ROLLBACK
    assert "entries 18..29 are gone" in seen.check.message
    assert witness.state.read_text() == log.checkpoint(30)  # unchanged
    assert seen.evidence is not None and seen.evidence.read_text() == log.checkpoint(18)


def test_the_witness_rejects_a_fork_under_the_same_key(
    log: AuditLog, other_log: AuditLog, witness: Witness
) -> None:
    grow(log, 8)
    grow(other_log, 8)  # the same beginning, then two histories
    grow(log, 20)
    grow(other_log, 20, history="b")
    witness.observe(offer(log, 0), init=True)
    same_size = witness.observe(offer(other_log, 20))
    assert same_size.check is not None and same_size.check.verdict is Verdict.FORK
    assert "different roots" in same_size.check.message
    grow(other_log, 33, history="b")
    longer = witness.observe(offer(other_log, 20))  # its own proof, from its own tree at 20
    assert not longer.ok and longer.check is not None and longer.check.verdict is Verdict.FORK
    assert witness.state.read_text() == log.checkpoint(20)
    assert witness.observe(offer(log, 20)).ok  # the log it follows still extends it


def test_a_checkpoint_signed_by_another_key_is_refused(log: AuditLog, witness: Witness) -> None:
    grow(log, 3)
    witness.observe(offer(log, 0), init=True)
    stranger = AuditLog(log.db, CheckpointSigner(NAME, Ed25519PrivateKey.generate()))
    stranger.append({"n": 3})
    with pytest.raises(InvalidInput, match="the new checkpoint: the checkpoint carries no"):
        witness.observe(GivenCheckpoint(stranger.checkpoint()))


def run(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(arg) for arg in args])
    return result.exit_code, result.output


def test_the_witness_command_with_files(
    log: AuditLog,
    other_log: AuditLog,
    signer: CheckpointSigner,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GUARD_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("GUARD_DATABASE_URL", database_url)
    key = tmp_path / "checkpoint.vkey"
    key.write_text(signer.verifier_key + "\n")
    state = tmp_path / "audit.witness"
    grow(log, 12)
    (tmp_path / "cp12").write_text(log.checkpoint())
    code, output = run(
        "audit", "witness", "--state", state, "--key", key, "--checkpoint", tmp_path / "cp12"
    )
    assert code == 2 and "--init" in output
    code, output = run(
        "audit",
        "witness",
        "--state",
        state,
        "--key",
        key,
        "--checkpoint",
        tmp_path / "cp12",
        "--init",
    )
    assert code == 0 and "trusting the checkpoint at size 12" in output
    grow(log, 40)
    answer = runner.invoke(app, ["audit", "consistency", "--from", "12", "--json"])
    assert answer.exit_code == 0, answer.output
    (tmp_path / "proof.json").write_text(answer.stdout)
    assert json.loads(answer.stdout)["new_size"] == 40
    command: list[str | Path] = ["audit", "witness", "--state", state, "--key", key, "--checkpoint"]
    code, output = run(*command, tmp_path / "proof.json")
    assert code == 2 and "give the consistency proof" in output
    code, output = run(*command, tmp_path / "proof.json", "--proof", tmp_path / "proof.json")
    assert code == 0 and "extends the one at size 12; state updated" in output
    assert state.read_text() == log.checkpoint(40)
    (tmp_path / "cp25").write_text(log.checkpoint(25))
    code, output = run(*command, tmp_path / "cp25")
    assert code == 1 and "REJECTED: rollback" in output and "still holds size 40" in output
    grow(other_log, 40, history="b")
    (tmp_path / "fork").write_text(other_log.checkpoint())
    result = runner.invoke(app, [*map(str, command), str(tmp_path / "fork"), "--json"])
    assert result.exit_code == 1
    shown = json.loads(result.stdout)
    assert shown["ok"] is False and shown["verdict"] == "fork" and shown["previous_size"] == 40
    assert state.read_text() == log.checkpoint(40)


def _rewind(log: AuditLog, size: int) -> None:
    """What an operator with the database could do: cut the log back to ``size``."""
    with log.db.transaction() as session:
        session.execute(delete(AuditEntryRow).where(AuditEntryRow.idx >= size))
        for derived in (AuditIndexRow, AuditReasonIndexRow, AuditRefIndexRow):
            session.execute(delete(derived).where(derived.idx >= size))  # the search index too
        session.execute(delete(AuditCheckpointRow).where(AuditCheckpointRow.size > size))
        for level, idx in session.execute(select(AuditNodeRow.level, AuditNodeRow.idx)).all():
            if (idx + 1) << level > size:
                session.execute(
                    delete(AuditNodeRow).where(AuditNodeRow.level == level, AuditNodeRow.idx == idx)
                )
        session.execute(update(AuditStateRow).where(AuditStateRow.id == 1).values(size=size))


@pytest.fixture
def service(make_guard: GuardFactory) -> Iterator[tuple[AuditLog, str, str, Path]]:
    guard = make_guard()
    running = serve(create_app(guard=guard))
    url = next(running)
    token = ApiKeyStore(guard.db).create(tenant="acme", role=Role.AUDITOR, requester="acme/a").token
    yield guard.audit, url, token, guard.settings.audit_keys_dir / PUBLIC_KEY_FILE
    next(running, None)


def test_the_witness_follows_the_service_and_catches_a_rewritten_history(
    service: tuple[AuditLog, str, str, Path], tmp_path: Path
) -> None:
    log, url, token, key = service
    grow(log, log.size() + 9)
    start = log.size()
    state = tmp_path / "audit.witness"
    witness: list[str | Path] = [
        "audit",
        "witness",
        "--state",
        state,
        "--key",
        key,
        "--url",
        url,
        "--api-key",
        token,
    ]
    code, output = run(*witness, "--init")
    assert code == 0 and f"at size {start}" in output
    grow(log, start + 21)
    code, output = run(*witness)
    assert code == 0 and f"extends the one at size {start}; state updated" in output, output
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        answer = client.get("/v1/audit/consistency", params={"from": start}).json()
        assert answer["new_size"] == start + 21 and answer["checkpoint"] == log.checkpoint()
        assert client.get("/v1/audit/consistency", params={"from": start + 99}).status_code == 409
        assert client.get("/v1/audit/consistency", params={"from": 5, "to": 4}).status_code == 400
        before = client.get("/v1/audit/consistency", params={"old_size": 1, "new_size": 2})
        assert before.json()["proof"] == log.consistency(1, 2)  # the older parameter names
    _rewind(log, start + 4)  # the log is cut back ...
    code, output = run(*witness)
    assert code == 1 and "REJECTED: rollback" in output, output
    grow(log, start + 30, history="rewritten")  # ... and grown again with another history
    code, output = run(*witness)
    assert code == 1 and "REJECTED: fork" in output, output
    assert CheckpointVerifier.from_key_string(key.read_text()).verify(state.read_text()).size == (
        start + 21
    )
    export_log(log, tmp_path / "rewritten.jsonl")  # and its export, against the witness's state
    code, output = run(
        "audit", "verify", tmp_path / "rewritten.jsonl", "--key", key, "--since", state
    )
    assert code == 1 and "fork: the export's first" in output
