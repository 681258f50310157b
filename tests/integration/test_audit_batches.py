"""Batched audit appends (group commit) on SQLite and PostgreSQL: one transaction and one signed
checkpoint per batch, receipts only for what committed, gapless under 16 threads, a failing
batch fails every caller in it and stores nothing, ``append_in`` interleaves, and sizes without
a checkpoint are refused by name."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError
from sqlalchemy import delete, event, func, insert, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from guard.api import ApiKeyStore, Role, create_app
from guard.audit import (
    AuditLog,
    BatchLimits,
    Checkpoint,
    CheckpointSigner,
    CheckpointVerifier,
    Receipt,
    canonical_json,
    check_consistency_answer,
    export_log,
    verify_export,
    verify_receipt,
)
from guard.audit.batch import PendingEntry, append_batch
from guard.audit.merkle import MemoryTree, leaf_hash, root_hash
from guard.audit.tables import (
    AuditCheckpointRow,
    AuditEntryRow,
    AuditNodeRow,
    AuditStateRow,
    StoredSubtrees,
)
from guard.config import Settings
from guard.db import Database, DbTimeouts
from guard.errors import InvalidInput, NotFound, Unavailable
from tests.support.guards import GuardFactory
from tests.support.live import serve

NAME = "guard.test"
WRITERS = 16

pytestmark = pytest.mark.storage


class SlowSigner(CheckpointSigner):
    """Signs like the real one, ``delay`` seconds slower: commits last long enough that
    concurrent callers queue behind them (what a loaded server does anyway)."""

    delay = 0.0

    def sign(self, checkpoint: Checkpoint) -> str:
        time.sleep(self.delay)
        return super().sign(checkpoint)


@pytest.fixture
def signer() -> SlowSigner:
    return SlowSigner(NAME, Ed25519PrivateKey.generate())


@pytest.fixture
def verifier(signer: CheckpointSigner) -> CheckpointVerifier:
    return CheckpointVerifier.from_key_string(signer.verifier_key)


@pytest.fixture
def log(database_url: str, signer: CheckpointSigner) -> Iterator[AuditLog]:
    log = AuditLog(Database(database_url), signer)
    yield log
    log.db.dispose()


def entry(writer: int, i: int) -> dict[str, Any]:
    return {"kind": "decision", "writer": writer, "i": i, "note": "é"}


def together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(0..count-1)`` on ``count`` threads started at once; results or errors."""
    start = threading.Barrier(count)

    def one(number: int) -> Any:
        start.wait()
        try:
            return work(number)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def stored_counts(log: AuditLog) -> tuple[int, int, int, int]:
    with log.db.transaction() as session:
        return (
            session.scalar(select(AuditStateRow.size).where(AuditStateRow.id == 1)) or 0,
            session.scalar(select(func.count()).select_from(AuditEntryRow)) or 0,
            session.scalar(select(func.count()).select_from(AuditNodeRow)) or 0,
            session.scalar(select(func.count()).select_from(AuditCheckpointRow)) or 0,
        )


def check_export(log: AuditLog, verifier: CheckpointVerifier, path: Path, size: int) -> None:
    export_log(log, path)
    report = verify_export(path, verifier)
    assert report.ok and report.entries == size, report.problems


# --- one batch ----------------------------------------------------------------------------


@pytest.mark.parametrize(("before", "length"), [(0, 1), (0, 11), (1, 3), (5, 11), (8, 8)])
def test_every_receipt_of_a_batch_verifies_against_its_one_checkpoint(
    log: AuditLog, signer: CheckpointSigner, verifier: CheckpointVerifier, before: int, length: int
) -> None:
    earlier = [log.append(entry(0, i)) for i in range(before)]
    batch = [entry(1, i) for i in range(length)]
    with log.db.transaction() as session:
        receipts = append_batch(session, signer, [PendingEntry.of(e) for e in batch])
    reference = MemoryTree(canonical_json(e) for e in [entry(0, i) for i in range(before)] + batch)
    head = verifier.verify(receipts[0].checkpoint)
    assert head.size == before + length and head.root == root_hash(reference, head.size)
    assert {r.checkpoint for r in receipts} == {log.checkpoint()}  # one checkpoint, the stored one
    assert [r.leaf_index for r in receipts] == list(range(before, before + length))
    for receipt, item in zip(receipts, batch, strict=True):
        assert verify_receipt(receipt, verifier, canonical_json(item))
    for receipt, item in zip(earlier, [entry(0, i) for i in range(before)], strict=True):
        assert verify_receipt(receipt, verifier, canonical_json(item))
        assert verify_receipt(log.receipt(receipt.leaf_index), verifier, canonical_json(item))
    assert stored_counts(log)[3] == before + 1  # one checkpoint per batch


# --- many threads -------------------------------------------------------------------------


def test_sixteen_threads_get_gapless_indices_and_receipts_that_verify(
    log: AuditLog, signer: SlowSigner, verifier: CheckpointVerifier, tmp_path: Path
) -> None:
    signer.delay = 0.005
    per_writer = 20
    results = together(WRITERS, lambda w: [log.append(entry(w, i)) for i in range(per_writer)])
    assert not [r for r in results if isinstance(r, Exception)], results
    receipts: dict[int, tuple[Receipt, dict[str, Any]]] = {}
    for writer, mine in enumerate(results):
        assert [r.leaf_index for r in mine] == sorted(r.leaf_index for r in mine)  # in order
        for i, receipt in enumerate(mine):
            receipts[receipt.leaf_index] = (receipt, entry(writer, i))
    total = WRITERS * per_writer
    assert sorted(receipts) == list(range(total)) and log.size() == total
    by_checkpoint: dict[str, list[int]] = {}
    for index, (receipt, item) in receipts.items():
        assert verify_receipt(receipt, verifier, canonical_json(item))
        assert log.entry(index) == item
        by_checkpoint.setdefault(receipt.checkpoint, []).append(index)
    assert len(by_checkpoint) < total  # appends shared checkpoints
    for note, indices in by_checkpoint.items():
        size = verifier.verify(note).size
        assert sorted(indices) == list(range(size - len(indices), size))  # one batch, contiguous
        assert log.checkpoint(size) == note
    assert stored_counts(log) == (
        total,
        total,
        2 * total - bin(total).count("1"),
        len(by_checkpoint),
    )
    check_export(log, verifier, tmp_path / "audit.jsonl", total)


def test_one_transaction_per_append_when_a_batch_holds_one(
    database_url: str, signer: CheckpointSigner, verifier: CheckpointVerifier, tmp_path: Path
) -> None:
    log = AuditLog(Database(database_url), signer, batch=BatchLimits(max_entries=1))
    results = together(8, lambda w: [log.append(entry(w, i)) for i in range(5)])
    indices = sorted(r.leaf_index for mine in results for r in mine)
    assert indices == list(range(40))
    assert stored_counts(log)[3] == 40  # the path before group commit: a checkpoint per append
    check_export(log, verifier, tmp_path / "audit.jsonl", 40)
    log.db.dispose()


def test_append_in_interleaves_with_batches(
    log: AuditLog, signer: SlowSigner, verifier: CheckpointVerifier, tmp_path: Path
) -> None:
    """Appends inside other transactions (the consent registry's) take the same lock: they
    land between batches, and one rolled back leaves no gap."""
    signer.delay = 0.002

    def work(number: int) -> list[tuple[Receipt, dict[str, Any]]]:
        got = []
        for i in range(10):
            item = entry(number, i)
            if number % 4:
                got.append((log.append(item), item))
                continue
            try:
                with log.db.transaction() as session:
                    receipt = log.append_in(session, item)
                    if i % 3 == 0:
                        raise RuntimeError("the registry change failed")
                got.append((receipt, item))
            except RuntimeError:
                pass
        return got

    results = together(8, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    kept = [pair for mine in results for pair in mine]
    assert (
        sorted(r.leaf_index for r, _ in kept) == list(range(len(kept))) == list(range(log.size()))
    )
    for receipt, item in kept:
        assert verify_receipt(receipt, verifier, canonical_json(item))
        assert log.entry(receipt.leaf_index) == item
    check_export(log, verifier, tmp_path / "audit.jsonl", len(kept))


# --- failing batches ----------------------------------------------------------------------


def test_a_batch_that_fails_midway_fails_every_caller_and_stores_nothing(
    log: AuditLog, signer: SlowSigner, verifier: CheckpointVerifier
) -> None:
    """The batch's entries and nodes are written before its checkpoint row collides with one
    put in its way: the whole transaction rolls back, and each of its callers gets 503."""
    log.append(entry(0, 0))
    with log.db.transaction() as session:  # whatever size the next batch ends at is taken
        session.execute(
            insert(AuditCheckpointRow),
            [{"size": size, "root": "00" * 32, "note": "stray"} for size in range(2, 40)],
        )
    before = stored_counts(log)
    signer.delay = 0.2
    first: list[object] = []

    def hold() -> None:
        try:
            first.append(log.append(entry(0, 1)))
        except Unavailable as exc:
            first.append(exc)

    holder = threading.Thread(target=hold)
    holder.start()  # a slow batch (it fails too: size 2 is taken), so the eight queue behind it
    time.sleep(0.05)
    results = together(8, lambda w: log.append(entry(w + 1, 0)))
    holder.join()
    results += first
    assert all(isinstance(r, Unavailable) for r in results), results
    assert "exists already" in str(results[0])
    assert stored_counts(log) == before  # no entry, node or size of any failed batch
    with log.db.transaction() as session:
        session.execute(delete(AuditCheckpointRow).where(AuditCheckpointRow.note == "stray"))
    signer.delay = 0.0
    receipt = log.append(entry(9, 9))
    assert receipt.leaf_index == 1 and verify_receipt(receipt, verifier)


def test_an_entry_that_cannot_be_stored_fails_only_its_own_caller(
    log: AuditLog, signer: SlowSigner, verifier: CheckpointVerifier
) -> None:
    """Entries are made canonical in their callers' threads: one that is not JSON, or whose
    decision id the column cannot hold, is refused to its caller alone, and the batch it would
    have joined commits without it."""
    signer.delay = 0.05

    def work(number: int) -> Receipt:
        if number == 3:
            return log.append({"kind": "decision", "not json": {1, 2}})
        if number == 5:
            return log.append({"kind": "decision", "decision_id": "d" * 41})
        return log.append(entry(number, 0))

    results = together(8, work)
    assert isinstance(results[3], TypeError) and isinstance(results[5], InvalidInput)
    kept = [r for n, r in enumerate(results) if n not in (3, 5)]
    assert sorted(r.leaf_index for r in kept) == list(range(6)) and log.size() == 6
    assert all(verify_receipt(r, verifier) for r in kept)


def _hold_the_append_lock(url: str) -> Iterator[None]:
    engine = Database(url).engine
    with engine.connect() as connection:
        connection.execute(text("UPDATE audit_state SET size = size WHERE id = 1"))
        yield
        connection.rollback()
    engine.dispose()


def test_a_database_fault_fails_every_waiting_caller_and_the_next_batch_works(
    database_url: str, signer: CheckpointSigner, verifier: CheckpointVerifier
) -> None:
    log = AuditLog(Database(database_url, DbTimeouts(lock_s=0.3)), signer)
    log.append(entry(0, 0))
    before = stored_counts(log)
    holding = _hold_the_append_lock(database_url)
    next(holding)  # another connection holds the append lock past the lock timeout
    results = together(8, lambda w: log.append(entry(w + 1, 0)))
    next(holding, None)
    assert all(isinstance(r, Unavailable) for r in results), results
    assert "lock" in str(results[0])
    assert stored_counts(log) == before
    receipts = together(8, lambda w: log.append(entry(w + 1, 1)))
    assert sorted(r.leaf_index for r in receipts) == list(range(1, 9))
    assert all(verify_receipt(r, verifier) for r in receipts)
    log.db.dispose()


# --- sizes without a checkpoint -----------------------------------------------------------


def batches(log: AuditLog, signer: CheckpointSigner, lengths: Sequence[int]) -> None:
    n = 0
    for length in lengths:
        with log.db.transaction() as session:
            pending = [PendingEntry.of(entry(0, n + i)) for i in range(length)]
            append_batch(session, signer, pending)
        n += length


def test_a_size_without_a_checkpoint_is_not_found_naming_the_nearest(
    log: AuditLog, signer: CheckpointSigner, verifier: CheckpointVerifier
) -> None:
    batches(log, signer, [1, 4, 3])  # checkpoints at sizes 1, 5 and 8
    assert log.checkpoint_sizes() == [1, 5, 8]
    assert verifier.verify(log.checkpoint(5)).size == 5
    for ask in (
        lambda: log.checkpoint(3),
        lambda: log.receipt(0, 3),
        lambda: log.prove_consistency(1, 3),
    ):
        with pytest.raises(
            NotFound, match=r"no checkpoint at size 3: .* nearest checkpointed sizes are 1 and 5"
        ):
            ask()
    with pytest.raises(NotFound, match="not in a tree of size 9"):
        log.receipt(0, 9)
    with pytest.raises(NotFound, match="no checkpoint at size 9 yet"):
        log.checkpoint(9)
    assert verify_receipt(log.receipt(2, 5), verifier, canonical_json(entry(0, 2)))
    # A proof *from* any size is computable; only its end needs a signed tree.
    held = verifier.verify(log.checkpoint(1))
    answer = log.prove_consistency(1, 8).to_dict()
    assert check_consistency_answer(held, answer, verifier).ok
    assert log.prove_consistency(3).new_size == 8


def test_an_export_of_batches_verifies_and_names_the_range_an_alteration_hides_in(
    log: AuditLog, signer: CheckpointSigner, verifier: CheckpointVerifier, tmp_path: Path
) -> None:
    batches(log, signer, [1, 4, 3, 5])
    path = tmp_path / "audit.jsonl"
    export_log(log, path)
    report = verify_export(path, verifier)
    assert report.ok and report.entries == 13 and report.checkpoints == 4
    with log.db.transaction() as session:  # entry 6 altered and its leaf hash recomputed
        row = session.get(AuditEntryRow, 6)
        assert row is not None
        row.entry = row.entry.replace('"i":6', '"i":60')
        row.leaf_hash = leaf_hash(row.entry.encode()).hex()
    export_log(log, path)
    report = verify_export(path, verifier)
    assert not report.ok and report.first_bad_index == 5
    assert report.problems[0].startswith("entries 5..7: the signed checkpoint at size 8")


# --- settings, CLI and API ----------------------------------------------------------------


def test_the_settings_bound_the_batches(tmp_path: Path) -> None:
    from guard.audit import open_audit_log

    settings = Settings(data_dir=tmp_path, audit_batch_max_entries=32, audit_batch_max_wait_ms=2.5)
    assert open_audit_log(settings).batch_limits == BatchLimits(32, 2.5)
    for bad in ({"audit_batch_max_entries": 0}, {"audit_batch_max_wait_ms": 1000}):
        with pytest.raises(ValidationError):
            Settings(data_dir=tmp_path, **bad)  # type: ignore[arg-type]


@pytest.mark.slow
def test_the_api_and_the_cli_refuse_a_size_without_a_checkpoint(
    make_guard: GuardFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = make_guard()
    log = guard.audit
    signer = log.current_signer()
    start = log.size()
    batches(log, signer, [3, 4])  # checkpoints at start + 3 and start + 7
    inside = start + 5
    running = serve(create_app(guard=guard))
    url = next(running)
    token = ApiKeyStore(guard.db).create(tenant="acme", role=Role.AUDITOR, requester="acme/a").token
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
            answer = client.get(f"/v1/audit/entries/{start}/proof", params={"size": inside})
            assert answer.status_code == 404
            assert f"nearest checkpointed sizes are {start + 3} and {start + 7}" in answer.text
            good = client.get(f"/v1/audit/entries/{start}/proof", params={"size": start + 3})
            assert good.status_code == 200 and good.json()["leaf_index"] == start
            assert (
                client.get(
                    "/v1/audit/consistency", params={"from": start + 3, "to": inside}
                ).status_code
                == 404
            )
    finally:
        next(running, None)
    from guard.cli import app

    monkeypatch.setenv("GUARD_DATA_DIR", str(guard.settings.data_dir))
    monkeypatch.setenv("GUARD_DATABASE_URL", guard.settings.database_url)
    result = CliRunner().invoke(app, ["audit", "checkpoint", "--size", str(inside)])
    assert result.exit_code != 0
    said = " ".join(result.output.split())
    assert f"nearest checkpointed sizes are {start + 3} and {start + 7}" in said, said
    result = CliRunner().invoke(app, ["audit", "checkpoint", "--size", str(start + 7)])
    assert result.exit_code == 0 and f"\n{start + 7}\n" in result.output


def test_the_frontier_read_uses_the_primary_key(sqlite_template: Path, tmp_path: Path) -> None:
    """One query for the nodes a batch needs, answered from the primary key, never a table scan
    (SQLite scans the whole table for a row-value IN list: 40 ms at 10^5 entries; PostgreSQL
    uses the index for both forms)."""
    path = tmp_path / "guard.db"
    shutil.copyfile(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    statements: list[str] = []
    with db.engine.connect() as connection:

        @event.listens_for(connection, "before_cursor_execute")
        def keep(_c: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements.append(statement)

        with Session(connection) as session:
            StoredSubtrees(session).preload([(3, 0), (1, 4), (0, 10)])
        (query,) = statements
        plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + query, (3, 0, 1, 4, 0, 10))
        details = " ".join(str(row[-1]) for row in plan.all())
    assert "SEARCH audit_nodes USING INDEX" in details and "SCAN audit_nodes" not in details
    db.dispose()
