"""The audit log on SQLite and PostgreSQL: appends, receipts, proofs, concurrency, atomicity."""

from __future__ import annotations

import multiprocessing
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, func, select

from guard.audit.checkpoint import (
    PRIVATE_KEY_FILE,
    CheckpointSigner,
    CheckpointVerifier,
    create_checkpoint_key,
    load_checkpoint_signer,
)
from guard.audit.export import ExportVerification, export_log, verify_export
from guard.audit.log import (
    AuditCheckpointRow,
    AuditEntryRow,
    AuditLog,
    canonical_json,
    verify_receipt,
)
from guard.audit.merkle import CompactRange, MemoryTree, leaf_hash, root_hash, verify_consistency
from guard.db import Database

NAME = "guard.test"

pytestmark = pytest.mark.storage


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    create_checkpoint_key(tmp_path / "audit", NAME)
    return tmp_path / "audit"


@pytest.fixture
def log(database_url: str, keys: Path) -> AuditLog:
    return AuditLog(Database(database_url), load_checkpoint_signer(keys / PRIVATE_KEY_FILE, NAME))


def verifier(log: AuditLog) -> CheckpointVerifier:
    assert log.signer is not None
    return CheckpointVerifier.from_key_string(log.signer.verifier_key)


def entry(i: int) -> dict[str, object]:
    return {"kind": "decision", "n": i, "verdict": "allow" if i % 3 else "deny", "note": "é"}


def test_appends_make_a_verifiable_tree(log: AuditLog) -> None:
    receipts = [log.append(entry(i)) for i in range(21)]
    assert [r.leaf_index for r in receipts] == list(range(21))
    assert log.size() == 21 and log.entry(5) == entry(5)
    reference = MemoryTree(canonical_json(entry(i)) for i in range(21))
    latest = verifier(log).verify(log.checkpoint())
    assert latest.size == 21 and latest.root == root_hash(reference, 21)
    for i, receipt in enumerate(receipts):
        assert verify_receipt(receipt, verifier(log), canonical_json(entry(i)))
        assert not verify_receipt(receipt, verifier(log), canonical_json(entry(i + 1)))
        fresh = log.receipt(i)  # against the latest checkpoint
        assert verify_receipt(fresh, verifier(log), canonical_json(entry(i)))
    for old in range(1, 22):
        for new in range(old, 22):
            first = verifier(log).verify(log.checkpoint(old))
            second = verifier(log).verify(log.checkpoint(new))
            proof = [bytes.fromhex(p) for p in log.consistency(old, new)]
            assert verify_consistency(old, new, first.root, second.root, proof)


def test_a_receipt_signed_by_another_key_fails(log: AuditLog) -> None:
    receipt = log.append(entry(0))
    stranger = CheckpointSigner(NAME, Ed25519PrivateKey.generate())
    assert not verify_receipt(receipt, CheckpointVerifier.from_key_string(stranger.verifier_key))


def test_a_failed_append_leaves_nothing_behind(log: AuditLog) -> None:
    log.append(entry(0))

    class BrokenSigner(CheckpointSigner):
        def sign(self, checkpoint: object) -> str:  # type: ignore[override]
            raise RuntimeError("HSM unreachable")

    broken = AuditLog(log.db, BrokenSigner(NAME, Ed25519PrivateKey.generate()))
    with pytest.raises(RuntimeError):
        broken.append(entry(1))
    assert log.size() == 1
    with log.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntryRow)) == 1
        assert session.scalar(select(func.count()).select_from(AuditCheckpointRow)) == 1
    assert log.append(entry(1)).leaf_index == 1


def _writer(url: str, keys: str, worker: int, count: int) -> None:
    log = AuditLog(Database(url), load_checkpoint_signer(Path(keys) / PRIVATE_KEY_FILE, NAME))
    for i in range(count):
        log.append({"worker": worker, "i": i})
    log.db.dispose()


def _run_writers(log: AuditLog, keys: Path, workers: int, count: int) -> None:
    context = multiprocessing.get_context("spawn")
    url = log.db.engine.url.render_as_string(hide_password=False)
    processes = [
        context.Process(target=_writer, args=(url, str(keys), w, count)) for w in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=600)
        assert process.exitcode == 0


def _check_whole_log(log: AuditLog, expected: int) -> None:
    """Gapless indices, every leaf hash recomputed, every checkpoint on one linear history."""
    check = verifier(log)
    compact = CompactRange()
    with log.db.transaction() as session:
        entries = session.execute(
            select(AuditEntryRow.idx, AuditEntryRow.entry, AuditEntryRow.leaf_hash).order_by(
                AuditEntryRow.idx
            )
        ).all()
        notes = dict(
            session.execute(select(AuditCheckpointRow.size, AuditCheckpointRow.note)).all()
        )
    assert [idx for idx, _, _ in entries] == list(range(expected))
    assert sorted(notes) == list(range(1, expected + 1))
    for idx, text, stored in entries:
        leaf = leaf_hash(text.encode())
        assert leaf.hex() == stored
        compact.append(leaf)
        assert check.verify(notes[idx + 1]).root == compact.root(), f"checkpoint {idx + 1}"
    for _ in range(20):  # and consistency proofs the log serves, for random pairs
        old, new = sorted(random.sample(range(1, expected + 1), 2))
        proof = [bytes.fromhex(p) for p in log.consistency(old, new)]
        old_root, new_root = check.verify(notes[old]).root, check.verify(notes[new]).root
        assert verify_consistency(old, new, old_root, new_root, proof)


def test_several_processes_share_one_log(log: AuditLog, keys: Path) -> None:
    """Concurrent writers leave one gapless, consistent log (bench/audit.py runs 16 x 1,000)."""
    _run_writers(log, keys, workers=4, count=50)
    assert log.size() == 200
    _check_whole_log(log, 200)


def _exported(log: AuditLog, path: Path) -> ExportVerification:
    export_log(log, path)
    return verify_export(path, verifier(log))


def test_an_untouched_export_verifies(log: AuditLog, tmp_path: Path) -> None:
    for i in range(13):
        log.append(entry(i))
    report = _exported(log, tmp_path / "audit.jsonl")
    assert report.ok and report.entries == 13 and report.checkpoints == 13
    assert report.first_bad_index is None


def _tamper(log: AuditLog, how: str) -> None:
    with log.db.transaction() as session:
        if how == "edit":
            row = session.get(AuditEntryRow, 6)
            assert row is not None
            row.entry = row.entry.replace('"deny"', '"allow"')
        elif how == "edit-and-rehash":
            row = session.get(AuditEntryRow, 6)
            assert row is not None
            row.entry = row.entry.replace('"deny"', '"allow"')
            row.leaf_hash = leaf_hash(row.entry.encode()).hex()
        elif how == "delete":
            session.execute(delete(AuditEntryRow).where(AuditEntryRow.idx == 6))
        elif how == "reorder":
            six, seven = session.get(AuditEntryRow, 6), session.get(AuditEntryRow, 7)
            assert six is not None and seven is not None
            six.entry, seven.entry = seven.entry, six.entry
            six.leaf_hash, seven.leaf_hash = seven.leaf_hash, six.leaf_hash


@pytest.mark.parametrize("how", ["edit", "edit-and-rehash", "delete", "reorder"])
def test_a_tampered_row_fails_verification_and_is_named(
    log: AuditLog, tmp_path: Path, how: str
) -> None:
    for i in range(13):
        log.append(entry(i))
    _tamper(log, how)
    report = _exported(log, tmp_path / "audit.jsonl")
    assert not report.ok
    assert report.first_bad_index == 6, report.problems
    assert "entry 6" in report.problems[0]


def test_an_export_signed_by_someone_else_fails(log: AuditLog, tmp_path: Path) -> None:
    log.append(entry(0))
    export_log(log, tmp_path / "audit.jsonl")
    stranger = CheckpointSigner(NAME, Ed25519PrivateKey.generate())
    report = verify_export(
        tmp_path / "audit.jsonl", CheckpointVerifier.from_key_string(stranger.verifier_key)
    )
    assert not report.ok and report.first_bad_index == 0
