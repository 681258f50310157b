"""Crash safety of batched appends on PostgreSQL: writer processes killed (SIGKILL) at random
moments while they append leave no gap and no fork, and every receipt any writer got before it
died is for an entry the log kept.

Six processes of four threads each append in a loop (so batches form in each, and processes
contend for the state row); three are killed at random moments. A writer is inside a batch's
transaction nearly all the time (committing one, or waiting in one for the state row), so the
kills land mid-batch. Then the whole log is exported and verified offline: gapless, every leaf
recomputed, every signed checkpoint on one linear history; and each receipt a writer wrote down
verifies, its entry is the log's entry at that index, and its checkpoint is the log's own."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from guard.audit import (
    AuditLog,
    CheckpointVerifier,
    Receipt,
    canonical_json,
    export_log,
    verify_export,
    verify_receipt,
)
from guard.audit.checkpoint import PRIVATE_KEY_FILE, create_checkpoint_key, load_checkpoint_signer
from guard.db import Database

NAME = "guard.test"
PROCESSES = 6
KILLED = 3
THREADS = 4
PER_THREAD = 60

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _writer(url: str, keys: str, writer: int, out: str) -> None:
    """Append ``THREADS`` x ``PER_THREAD`` entries; write each receipt down the moment it
    arrives (one ``O_APPEND`` write per line, so a kill cuts at most the line being written)."""
    log = AuditLog(Database(url), load_checkpoint_signer(Path(keys) / PRIVATE_KEY_FILE, NAME))
    handle = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def thread(number: int) -> None:
        for i in range(PER_THREAD):
            item = {"kind": "decision", "writer": writer, "thread": number, "i": i}
            receipt = log.append(item)
            line = {"entry": item, "receipt": receipt.to_dict()}
            os.write(handle, (json.dumps(line) + "\n").encode())

    threads = [threading.Thread(target=thread, args=(n,)) for n in range(THREADS)]
    for started in threads:
        started.start()
    for finished in threads:
        finished.join()
    os.close(handle)
    log.db.dispose()


def _receipts(path: Path) -> list[tuple[dict[str, Any], Receipt]]:
    found = []
    if not path.exists():
        return found
    for text in path.read_text().splitlines():
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            continue  # the line a kill cut short
        r = line["receipt"]
        receipt = Receipt(
            r["leaf_index"], r["leaf_hash"], r["checkpoint"], tuple(r["inclusion_proof"])
        )
        found.append((line["entry"], receipt))
    return found


def test_writers_killed_mid_batch_leave_no_gap_no_fork_and_every_receipt_holds(
    postgres_url: str, tmp_path: Path
) -> None:
    keys = tmp_path / "audit"
    create_checkpoint_key(keys, NAME)
    signer = load_checkpoint_signer(keys / PRIVATE_KEY_FILE, NAME)
    verifier = CheckpointVerifier.from_key_string(signer.verifier_key)
    log = AuditLog(Database(postgres_url), signer)
    context = multiprocessing.get_context("spawn")
    outs = [tmp_path / f"receipts-{w}.jsonl" for w in range(PROCESSES)]
    processes = [
        context.Process(target=_writer, args=(postgres_url, str(keys), w, str(outs[w])))
        for w in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    rng = random.Random()
    victims = rng.sample(range(PROCESSES), KILLED)
    deadline = time.monotonic() + 120
    while any(len(_receipts(outs[w])) < 5 for w in victims):  # all appending by now
        assert time.monotonic() < deadline, "the writers never started appending"
        time.sleep(0.02)
    for w in victims:
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(processes[w].pid or 0, signal.SIGKILL)
    for process in processes:
        process.join(timeout=300)
    survivors = [w for w in range(PROCESSES) if w not in victims]
    assert all(processes[w].exitcode == -signal.SIGKILL for w in victims)
    assert all(processes[w].exitcode == 0 for w in survivors)
    for w in survivors:
        assert len(_receipts(outs[w])) == THREADS * PER_THREAD

    # The log goes on after the kills (no lock left behind) ...
    after = log.append({"kind": "decision", "after": "the kills"})
    size = log.size()
    assert after.leaf_index == size - 1
    # ... and is one gapless, linear, fully signed history.
    export = tmp_path / "audit.jsonl"
    export_log(log, export)
    report = verify_export(export, verifier)
    assert report.ok and report.entries == size, report.problems
    got = [pair for out in outs for pair in _receipts(out)]
    killed_got = sum(len(_receipts(outs[w])) for w in victims)
    assert killed_got < KILLED * THREADS * PER_THREAD  # they did die before finishing
    assert size >= len(got) + 1
    indices = [receipt.leaf_index for _, receipt in got]
    assert len(set(indices)) == len(indices)  # no index handed out twice
    for item, receipt in got:
        assert verify_receipt(receipt, verifier, canonical_json(item))
        assert log.entry(receipt.leaf_index) == item
        checkpoint = verifier.verify(receipt.checkpoint)
        assert log.checkpoint(checkpoint.size) == receipt.checkpoint  # on the log's one history
    log.db.dispose()
