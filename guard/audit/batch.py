"""Write a batch of entries into the log within one transaction, under one signed checkpoint.

The batch first *writes* the single ``audit_state`` row (``UPDATE … SET size = size``): on
PostgreSQL that takes the row lock, on SQLite the database write lock, so batches from any
number of threads or processes (and :meth:`AuditLog.append_in` inside other transactions) run
one at a time, each starting where the last committed one ended: indices stay gapless and the
tree never forks. Everything else is a fixed number of statements whatever the batch's length:
one query for the stored nodes the tree needs (the :func:`~guard.audit.merkle.frontier` of the
current size), one bulk insert each for entries, completed nodes and the search index
(:mod:`guard.audit.index`), one checkpoint row signed at the batch's end size, the new size. A
failed transaction rolls back all of it together.

    >>> with db.transaction() as session:                              # doctest: +SKIP
    ...     receipts = append_batch(session, signer, [PendingEntry.of(e) for e in entries])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, insert, update
from sqlalchemy.orm import Session

from guard.audit.checkpoint import Checkpoint, CheckpointSigner
from guard.audit.index import IndexRows, index_rows, write_index
from guard.audit.merkle import CompactRange, frontier, inclusion_proof, leaf_hash
from guard.audit.receipts import Receipt, canonical_json
from guard.audit.tables import (
    AuditCheckpointRow,
    AuditEntryRow,
    AuditNodeRow,
    AuditStateRow,
    StoredSubtrees,
)
from guard.db import Base
from guard.errors import InvalidInput

DECISION_ID_CHARS = 40  # audit_entries.decision_id is VARCHAR(40)


def _table(row: type[Base]) -> Table:
    # Core tables: a batch inserts plain rows in bulk, without the ORM's unit of work.
    return Base.metadata.tables[str(row.__tablename__)]


_STATE = _table(AuditStateRow)
_ENTRIES = _table(AuditEntryRow)
_NODES = _table(AuditNodeRow)
_CHECKPOINTS = _table(AuditCheckpointRow)


def lock_size(session: Session) -> int:
    """Take the append lock by writing the state row, and return the log's size under it: the
    next batch's first index."""
    locked = session.execute(
        update(_STATE).where(_STATE.c.id == 1).values(size=_STATE.c.size).returning(_STATE.c.size)
    )
    return int(locked.scalar_one())


@dataclass(frozen=True)
class PendingEntry:
    """An entry made ready to append in its caller's thread: its canonical bytes, leaf hash and
    decision id. Whatever is wrong with one entry (not JSON, a decision id the column cannot
    hold) fails its own caller here, never the batch it would have shared with others."""

    data: bytes
    leaf: bytes
    decision_id: str | None
    index: IndexRows
    """Its rows in the search index (:mod:`guard.audit.index`), written with it."""

    @classmethod
    def of(cls, entry: dict[str, Any]) -> PendingEntry:
        data = canonical_json(entry)
        decision_id = entry.get("decision_id") if entry.get("kind") == "decision" else None
        if decision_id is not None and not (
            isinstance(decision_id, str) and len(decision_id) <= DECISION_ID_CHARS
        ):
            raise InvalidInput(
                f"an audit entry's decision_id must be a string of at most {DECISION_ID_CHARS} "
                "characters"
            )
        return cls(data, leaf_hash(data), decision_id, index_rows(entry))


def append_batch(
    session: Session, signer: CheckpointSigner, entries: Sequence[PendingEntry]
) -> list[Receipt]:
    """Take the append lock, append ``entries`` in order with consecutive indices and sign one
    checkpoint at the new size; return each entry's receipt against it. Nothing is committed
    here: the receipts are true only once the caller's transaction commits, so they must not
    be handed out before."""
    return write_batch(session, signer, lock_size(session), entries)


def write_batch(
    session: Session, signer: CheckpointSigner, start: int, entries: Sequence[PendingEntry]
) -> list[Receipt]:
    """:func:`append_batch` after the lock was taken (:func:`lock_size` returned ``start``):
    the group commit takes its batch from the queue only then, so that everything that
    arrived while the transaction started and waited for the lock joins it."""
    if not entries:
        raise ValueError("an audit batch needs at least one entry")
    nodes = StoredSubtrees(session)
    edge = frontier(start)
    nodes.preload(edge)
    compact = CompactRange.resume(start, [nodes.subtree(level, index) for level, index in edge])
    created: list[dict[str, Any]] = []
    for pending in entries:
        for level, index, digest in compact.append(pending.leaf):
            nodes.remember(level, index, digest)
            created.append({"level": level, "idx": index, "hash": digest.hex()})
    end = compact.size
    root = compact.root()
    now = datetime.now(UTC)
    note = signer.sign(Checkpoint(signer.origin, end, root, now))
    rows = [
        {
            "idx": start + offset,
            "leaf_hash": pending.leaf.hex(),
            "entry": pending.data.decode(),
            "decision_id": pending.decision_id,
            "created_at": now,
        }
        for offset, pending in enumerate(entries)
    ]
    # executemany of one cached statement: the drivers send it pipelined (psycopg) or in one
    # call (sqlite3); a multi-row VALUES would be compiled afresh for every batch length.
    session.execute(insert(_ENTRIES), rows)
    session.execute(insert(_NODES), created)
    write_index(session, [(start + i, pending.index) for i, pending in enumerate(entries)])
    session.execute(insert(_CHECKPOINTS), {"size": end, "root": root.hex(), "note": note})
    session.execute(update(_STATE).where(_STATE.c.id == 1).values(size=end))
    return [
        Receipt(
            start + offset,
            pending.leaf.hex(),
            note,
            tuple(step.hex() for step in inclusion_proof(nodes, start + offset, end)),
        )
        for offset, pending in enumerate(entries)
    ]
