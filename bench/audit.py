"""Audit log throughput and proof cost.

1. Appends per second (each: entry + nodes + a signed checkpoint, one transaction) on SQLite and
   PostgreSQL with 1, 4 and 16 writer processes. Anchor: Tessera reports about 2,900 writes/s on
   one 12-core machine with a POSIX backend (batched); this machine has 2 cores.
2. Inclusion and consistency proof time (median) at 10^4, 10^5 and 10^6 entries. The big logs
   are bulk-loaded (same rows `append` writes, one checkpoint signed at the end) because
   appending 10^6 entries one by one would take hours here.
3. Offline verification (`verify_export`: recompute every leaf and the tree, check every signed
   checkpoint) per 10^6 entries, measured on a real export of appended entries and scaled.
4. Integrity under contention: 16 processes append 1,000 entries each to one PostgreSQL log
   (the stress run the test suite kept until it moved here; the suite keeps 4 x 50), then the
   whole log is exported and verified offline: 16,000 gapless entries, every checkpoint on one
   linear history.

Usage: ``python bench/audit.py [--big 1000000] [--appends 300]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text, update
from timing import median_ms
from tqdm import tqdm

from guard.audit.checkpoint import (
    AUDIT_KEY_NAME,
    PRIVATE_KEY_FILE,
    Checkpoint,
    CheckpointVerifier,
    create_checkpoint_key,
    load_checkpoint_signer,
)
from guard.audit.export import export_log, verify_export
from guard.audit.log import (
    AuditCheckpointRow,
    AuditEntryRow,
    AuditLog,
    AuditNodeRow,
    AuditStateRow,
    canonical_json,
)
from guard.audit.merkle import CompactRange, leaf_hash
from guard.db import Database, normalise_url, upgrade_to_head

POSTGRES = normalise_url("postgresql://postgres@127.0.0.1:5432/postgres")


def _entry(i: int) -> dict[str, object]:
    return {"v": 1, "kind": "decision", "n": i, "verdict": "deny", "reason_codes": ["no_consent"]}


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


def appends_per_second(kind: str, writers: int, total: int, folder: Path, keys: Path) -> float:
    per_writer = total // writers
    elapsed = _append_concurrently(_fresh_database(kind, folder), writers, per_writer, keys)
    return per_writer * writers / elapsed


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
    parser.add_argument("--appends", type=int, default=320, help="entries per throughput run")
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
            throughput(args.appends, folder, keys)
        if "proofs" in args.sections:
            proofs(args.big, folder, keys)
        if "verify" in args.sections:
            offline_verification(folder, keys)
        if "integrity" in args.sections:
            integrity_under_contention(folder, keys)


def throughput(appends: int, folder: Path, keys: Path) -> None:
    print("| backend | writers | appends/s | vs 1 writer | vs Tessera 2,900/s |")
    print("|---|---|---|---|---|")
    for kind in ("sqlite", "postgresql"):
        single = None
        for writers in (1, 4, 16):
            rate = appends_per_second(kind, writers, appends, folder, keys)
            single = single or rate
            print(
                f"| {kind} | {writers} | {rate:.0f} | {rate / single:.2f}× | {rate / 2900:.3f}× |"
            )


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


def offline_verification(folder: Path, keys: Path) -> None:
    url = _fresh_database("sqlite", folder)
    log = AuditLog(Database(url), load_checkpoint_signer(keys / PRIVATE_KEY_FILE, AUDIT_KEY_NAME))
    count = 20_000
    for i in tqdm(range(count), desc="appending for export", file=sys.stderr):
        log.append(_entry(i))
    export = folder / "audit.jsonl"
    export_log(log, export)
    verifier = CheckpointVerifier.from_key_string(log.signer.verifier_key)  # type: ignore[union-attr]
    start = time.perf_counter()
    report = verify_export(export, verifier)
    elapsed = time.perf_counter() - start
    assert report.ok
    print("\n| offline verification | entries | seconds | per 10^6 entries |")
    print("|---|---|---|---|")
    per_million = elapsed * 1e6 / count / 60
    print(
        f"| verify_export (every leaf, every signed checkpoint) | {count:,} | "
        f"{elapsed:.1f} | {per_million:.1f} min |"
    )


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
