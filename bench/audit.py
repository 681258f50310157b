"""Audit log throughput and proof cost.

1. Appends in-process, as the HTTP service's worker threads make them: 1, 4 and 16 writer
   threads on SQLite and PostgreSQL, each appending in a loop for ``--seconds``, timed per
   append (p50/p99 latency) and in all (appends/s), after a warm-up that opens the pool's
   connections. Side by side, in the same run and on the same database, five ways to append:
   - ``raw insert``: INSERT the entry row and COMMIT, no shared lock (the floor for any
     per-append commit);
   - ``raw lock+insert``: write the state row (the append lock), INSERT, COMMIT (the floor for
     a gapless one-transaction-per-append log);
   - ``per-append txn``: ``AuditLog`` with ``audit_batch_max_entries=1``, the path before group
     commit: each call its own transaction (lock, entry, nodes, a signed checkpoint);
   - ``batched``: ``AuditLog`` as shipped (group commit, up to 256 per batch, no waiting);
   - ``batched, wait 2 ms``: the same with ``audit_batch_max_wait_ms=2``.
   Anchor: Tessera reports about 2,900 writes/s on one 12-core machine with a POSIX backend
   (batched); this machine has 2 cores.
2. Inclusion and consistency proof time (median) at 10^4, 10^5 and 10^6 entries. The big logs
   are bulk-loaded (same rows `append` writes, one checkpoint signed at the end) because
   appending 10^6 entries one by one would take hours here.
3. Offline verification (`verify_export`: recompute every leaf and the tree, check every signed
   checkpoint) per 10^6 entries, measured on a real export of batched appends and scaled.
4. Integrity under contention: 16 processes append 1,000 entries each to one PostgreSQL log
   (the stress run the test suite kept until it moved here; the suite keeps 4 x 50 and the
   SIGKILL run of tests/integration/test_audit_crash.py), then the whole log is exported and
   verified offline: 16,000 gapless entries, every checkpoint on one linear history.

Usage: ``python bench/audit.py [--sections throughput] [--seconds 3] [--big 1000000]``
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, insert, text, update
from timing import median_ms
from tqdm import tqdm

from guard.audit.checkpoint import (
    AUDIT_KEY_NAME,
    PRIVATE_KEY_FILE,
    Checkpoint,
    CheckpointSigner,
    CheckpointVerifier,
    create_checkpoint_key,
    load_checkpoint_signer,
)
from guard.audit.export import export_log, verify_export
from guard.audit.index import AuditIndexRow, AuditReasonIndexRow, AuditRefIndexRow
from guard.audit.log import (
    AuditCheckpointRow,
    AuditEntryRow,
    AuditLog,
    AuditNodeRow,
    AuditStateRow,
    BatchLimits,
    canonical_json,
)
from guard.audit.merkle import CompactRange, leaf_hash
from guard.db import Database, normalise_url, upgrade_to_head

POSTGRES = normalise_url("postgresql://postgres@127.0.0.1:5432/postgres")
TESSERA = 2900.0


def _entry(i: int) -> dict[str, object]:
    """About the size of a real decision entry (keyed references are 64 hex digits each)."""
    ref = hashlib.sha256(str(i).encode()).hexdigest()
    return {
        "v": 2,
        "kind": "decision",
        "time": datetime.now(UTC).isoformat(),
        "tenant": "acme",
        "requester": ref,
        "operation": "check",
        "stage": "input",
        "decision_id": f"dec_{uuid.uuid4().hex}",
        "verdict": "deny",
        "reason_codes": ["no_consent"],
        "policy": {"id": "default", "version": 3},
        "input_sha256": ref,
        "subject_refs": [ref[::-1]],
        "n": i,
    }


def _fresh_database(kind: str, folder: Path) -> str:
    if kind == "sqlite":
        url = f"sqlite:///{folder / f'{uuid.uuid4().hex}.db'}"
    else:
        name = f"guard_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = POSTGRES.rsplit("/", 1)[0] + "/" + name
    upgrade_to_head(url)
    return url


def _drop_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    name = url.rsplit("/", 1)[1]
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# --- 1. appends in-process ----------------------------------------------------------------

_ENTRIES = AuditEntryRow.__table__
_STATE = AuditStateRow.__table__
MODES = ("raw insert", "raw lock+insert", "per-append txn", "batched", "batched, wait 2 ms")
BASELINE = "per-append txn"


def _row(idx: int, i: int) -> dict[str, Any]:
    data = canonical_json(_entry(i))
    return {
        "idx": idx,
        "leaf_hash": leaf_hash(data).hex(),
        "entry": data.decode(),
        "decision_id": None,
        "created_at": datetime.now(UTC),
    }


def _appender(mode: str, db: Database, signer: CheckpointSigner) -> Callable[[int], object]:
    """One append of ``mode``, callable from any thread."""
    if mode == "raw insert":
        counter = itertools.count()  # next() on it is atomic under the GIL: no shared lock

        def raw_insert(i: int) -> None:
            with db.engine.begin() as connection:
                connection.execute(insert(_ENTRIES), _row(next(counter), i))

        return raw_insert
    if mode == "raw lock+insert":

        def raw_locked(i: int) -> None:
            with db.engine.begin() as connection:
                size = connection.execute(
                    update(_STATE)
                    .where(_STATE.c.id == 1)
                    .values(size=_STATE.c.size + 1)
                    .returning(_STATE.c.size)
                ).scalar_one()
                connection.execute(insert(_ENTRIES), _row(size - 1, i))

        return raw_locked
    limits = {
        "per-append txn": BatchLimits(max_entries=1),
        "batched": BatchLimits(),
        "batched, wait 2 ms": BatchLimits(max_wait_ms=2.0),
    }[mode]
    log = AuditLog(db, signer, batch=limits)
    return lambda i: log.append(_entry(i))


@dataclass(frozen=True)
class Run:
    appends: int
    errors: int
    seconds: float
    latencies_ms: tuple[float, ...]

    @property
    def rate(self) -> float:
        return self.appends / self.seconds

    def percentile(self, q: int) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1]


def _drive(append: Callable[[int], object], writers: int, seconds: float) -> Run:
    """``writers`` threads append in a loop for ``seconds`` (started together)."""
    start_line = threading.Barrier(writers + 1)
    stop_at = [0.0]

    def writer(number: int) -> tuple[list[float], int]:
        latencies, errors, i = [], 0, number * 10_000_000
        start_line.wait()
        while time.perf_counter() < stop_at[0]:
            began = time.perf_counter()
            try:
                append(i)
            except Exception:  # a lock timeout under contention: counted, not hidden
                errors += 1
                continue
            latencies.append((time.perf_counter() - began) * 1000)
            i += 1
        return latencies, errors

    with ThreadPoolExecutor(writers) as pool:
        futures = [pool.submit(writer, n) for n in range(writers)]
        began = time.perf_counter()
        stop_at[0] = began + seconds
        start_line.wait()
        results = [future.result() for future in futures]
        elapsed = time.perf_counter() - began
    latencies = tuple(latency for mine, _ in results for latency in mine)
    return Run(len(latencies), sum(errors for _, errors in results), elapsed, latencies)


def _reset(db: Database) -> None:
    with db.engine.begin() as connection:
        for table in (
            AuditEntryRow,
            AuditNodeRow,
            AuditCheckpointRow,
            AuditIndexRow,
            AuditReasonIndexRow,
            AuditRefIndexRow,
        ):
            connection.execute(delete(table.__table__))
        connection.execute(update(_STATE).where(_STATE.c.id == 1).values(size=0))


def _measure(
    db: Database, signer: CheckpointSigner, mode: str, writers: int, seconds: float
) -> Run:
    append = _appender(mode, db, signer)
    _reset(db)
    _drive(append, writers, min(0.5, seconds))  # opens the pool's connections, warms caches
    _reset(db)
    return _drive(append, writers, seconds)


def throughput(seconds: float, folder: Path, keys: Path) -> None:
    signer = load_checkpoint_signer(keys / PRIVATE_KEY_FILE, AUDIT_KEY_NAME)
    load = os.getloadavg()
    print(f"cores: {os.cpu_count()}, load average at start: {load[0]:.2f} {load[1]:.2f}")
    print(
        "\n| backend | writers | append | appends/s | p50 ms | p99 ms | errors "
        f"| vs {BASELINE} | vs raw lock+insert | vs Tessera 2,900/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind in ("sqlite", "postgresql"):
        url = _fresh_database(kind, folder)
        db = Database(url)
        try:
            for writers in (1, 4, 16):
                runs = {mode: _measure(db, signer, mode, writers, seconds) for mode in MODES}
                for mode, run in runs.items():
                    print(
                        f"| {kind} | {writers} | {mode} | {run.rate:,.0f} | "
                        f"{run.percentile(50):.1f} | {run.percentile(99):.1f} | {run.errors} | "
                        f"{run.rate / runs[BASELINE].rate:.2f}× | "
                        f"{run.rate / runs['raw lock+insert'].rate:.2f}× | "
                        f"{run.rate / TESSERA:.2f}× |",
                        flush=True,
                    )
        finally:
            db.dispose()
            _drop_database(url)
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.2f} {load[1]:.2f}")


# --- 2.-4. --------------------------------------------------------------------------------


def _writer(url: str, keys: str, count: int, ready: Any, go: Any) -> None:
    signer = load_checkpoint_signer(Path(keys) / PRIVATE_KEY_FILE, AUDIT_KEY_NAME)
    log = AuditLog(Database(url), signer)
    log.size()  # connected and imported: only the appends are timed
    ready.release()
    go.wait()
    for i in range(count):
        log.append(_entry(i))
    log.db.dispose()


def _append_concurrently(url: str, writers: int, per_writer: int, keys: Path) -> float:
    """``writers`` processes append ``per_writer`` entries each, started together: seconds."""
    context = multiprocessing.get_context("spawn")
    ready, go = context.Semaphore(0), context.Event()
    processes = [
        context.Process(target=_writer, args=(url, str(keys), per_writer, ready, go))
        for _ in range(writers)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.acquire()
    start = time.perf_counter()
    go.set()
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise SystemExit(f"a writer process failed (exit code {process.exitcode})")
    return time.perf_counter() - start


def bulk_load(url: str, size: int, keys: Path) -> AuditLog:
    """Write the rows `append` would write for ``size`` entries, signing only the last head."""
    signer = load_checkpoint_signer(keys / PRIVATE_KEY_FILE, AUDIT_KEY_NAME)
    log = AuditLog(Database(url), signer)
    compact = CompactRange()
    now = datetime.now(UTC)
    batch = 20_000
    with log.db.engine.begin() as connection:
        for start in tqdm(range(0, size, batch), desc=f"bulk {size:,}", file=sys.stderr):
            entries, nodes = [], []
            for i in range(start, min(start + batch, size)):
                data = canonical_json(_entry(i))
                leaf = leaf_hash(data)
                entries.append(
                    {"idx": i, "leaf_hash": leaf.hex(), "entry": data.decode(), "created_at": now}
                )
                nodes += [
                    {"level": level, "idx": index, "hash": digest.hex()}
                    for level, index, digest in compact.append(leaf)
                ]
            connection.execute(insert(AuditEntryRow), entries)
            connection.execute(insert(AuditNodeRow), nodes)
        note = signer.sign(Checkpoint(log.origin, size, compact.root(), now))
        connection.execute(
            insert(AuditCheckpointRow), [{"size": size, "root": compact.root().hex(), "note": note}]
        )
        connection.execute(update(AuditStateRow).where(AuditStateRow.id == 1).values(size=size))
    return log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="timed appending per throughput case"
    )
    parser.add_argument(
        "--sections",
        nargs="+",
        default=["throughput", "proofs", "verify", "integrity"],
        choices=["throughput", "proofs", "verify", "integrity"],
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        keys = folder / "keys"
        create_checkpoint_key(keys, AUDIT_KEY_NAME)

        if "throughput" in args.sections:
            throughput(args.seconds, folder, keys)
        if "proofs" in args.sections:
            proofs(args.big, folder, keys)
        if "verify" in args.sections:
            offline_verification(folder, keys)
        if "integrity" in args.sections:
            integrity_under_contention(folder, keys)


def proofs(big: int, folder: Path, keys: Path) -> None:
    print("\n| backend | entries | inclusion proof ms | consistency proof ms | proof hashes |")
    print("|---|---|---|---|---|")
    rng = random.Random(1)
    for kind in ("sqlite", "postgresql"):
        for size in (10_000, 100_000, big):
            log = bulk_load(_fresh_database(kind, folder), size, keys)
            indices = [rng.randrange(size) for _ in range(9)]
            inclusion = median_ms(
                lambda log=log, indices=indices: log.receipt(indices.pop()), repeats=9
            )
            olds = [rng.randrange(1, size) for _ in range(9)]
            consistency = median_ms(
                lambda log=log, olds=olds, size=size: log.consistency(olds.pop(), size),
                repeats=9,
            )
            hashes = len(log.receipt(size // 3).inclusion_proof)
            print(f"| {kind} | {size:,} | {inclusion:.1f} | {consistency:.1f} | {hashes} |")
            log.db.dispose()


def offline_verification(folder: Path, keys: Path, count: int = 20_000) -> None:
    """Verify an export of ``count`` entries appended by 16 threads (batched, so fewer signed
    checkpoints than entries: what a busy log's export looks like)."""
    url = _fresh_database("sqlite", folder)
    log = AuditLog(Database(url), load_checkpoint_signer(keys / PRIVATE_KEY_FILE, AUDIT_KEY_NAME))
    writers = 16
    with (
        tqdm(total=count, desc="appending for export", file=sys.stderr) as bar,
        ThreadPoolExecutor(writers) as pool,
    ):

        def write(number: int) -> None:
            for i in range(number, count, writers):
                log.append(_entry(i))
                bar.update()

        list(pool.map(write, range(writers)))
    export = folder / "audit.jsonl"
    export_log(log, export)
    verifier = CheckpointVerifier.from_key_string(log.signer.verifier_key)  # type: ignore[union-attr]
    start = time.perf_counter()
    report = verify_export(export, verifier)
    elapsed = time.perf_counter() - start
    assert report.ok
    print("\n| offline verification | entries | signed checkpoints | seconds | per 10^6 entries |")
    print("|---|---|---|---|---|")
    per_million = elapsed * 1e6 / count / 60
    print(
        f"| verify_export (every leaf, every signed checkpoint) | {count:,} | "
        f"{report.checkpoints:,} | {elapsed:.1f} | {per_million:.1f} min |"
    )
    log.db.dispose()


def integrity_under_contention(
    folder: Path, keys: Path, writers: int = 16, per_writer: int = 1000
) -> None:
    url = _fresh_database("postgresql", folder)
    elapsed = _append_concurrently(url, writers, per_writer, keys)
    log = AuditLog(Database(url), load_checkpoint_signer(keys / PRIVATE_KEY_FILE, AUDIT_KEY_NAME))
    expected = writers * per_writer
    export = folder / "contention.jsonl"
    export_log(log, export)
    verifier = CheckpointVerifier.from_key_string(log.signer.verifier_key)  # type: ignore[union-attr]
    report = verify_export(export, verifier)
    if log.size() != expected or not report.ok:
        raise SystemExit(f"log of {log.size()} entries, expected {expected}: {report}")
    print("\n| integrity under contention | entries | appends/s | export verifies |")
    print("|---|---|---|---|")
    print(
        f"| postgresql, {writers} writers x {per_writer:,} | {expected:,} | "
        f"{expected / elapsed:.0f} | yes |"
    )
    log.db.dispose()


if __name__ == "__main__":
    main()
