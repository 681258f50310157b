"""The audit log: append-only entries in the guard's database, a Merkle tree over them, a signed
checkpoint per committed batch of appends and a receipt for every entry.

Appends are batched (group commit, :mod:`guard.audit.sequencer`): concurrent callers' entries
share one transaction and one signed checkpoint at the batch's end size, and each caller gets
its receipt against that checkpoint once the batch committed. A lone caller is a batch of one.
How a batch is written and why it stays gapless and fork-free across threads and processes:
:mod:`guard.audit.batch`. Checkpoints therefore exist at batch ends only; asking for one (or a
receipt, or a consistency proof ending) at another size is :class:`NotFound` naming the nearest
checkpointed sizes (docs/audit.md, "Batched appends").

Storage rule: every completed perfect subtree hash is stored (``audit_nodes``), so roots and
proofs for any size read O(log n) rows.

    >>> log = AuditLog(db, signer)                                      # doctest: +SKIP
    >>> receipt = log.append({"kind": "decision", "verdict": "deny"})   # doctest: +SKIP
    >>> verify_receipt(receipt, verifier)                               # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from guard.audit.batch import PendingEntry, append_batch, lock_size, write_batch
from guard.audit.checkpoint import (
    PUBLIC_KEY_FILE,
    CheckpointSigner,
    CheckpointVerifier,
    audit_key_file,
    checkpoint_key_file,
)
from guard.audit.index import AuditRefIndexRow
from guard.audit.merkle import consistency_proof, inclusion_proof
from guard.audit.receipts import Receipt, canonical_json, verify_receipt
from guard.audit.sequencer import BatchLimits, Sequencer
from guard.audit.tables import (
    AuditCheckpointRow,
    AuditEntryRow,
    AuditNodeRow,
    AuditStateRow,
    StoredSubtrees,
)
from guard.config import Settings
from guard.db import Database
from guard.errors import Conflict, InvalidInput, NotFound, Unavailable
from guard.keyfile import KeyFile

__all__ = [  # the rows and receipt helpers moved out; importers of this module keep them
    "AuditCheckpointRow",
    "AuditEntryRow",
    "AuditLog",
    "AuditNodeRow",
    "AuditStateRow",
    "BatchLimits",
    "ConsistencyProof",
    "Receipt",
    "audit_verifier",
    "canonical_json",
    "open_audit_log",
    "verify_receipt",
]


@dataclass(frozen=True)
class ConsistencyProof:
    """What the holder of the checkpoint at ``old_size`` needs to check that the log only grew
    since: the checkpoint at ``new_size`` as the log signed it and the RFC 6962 consistency
    proof between the two trees (see :func:`guard.audit.history.check_consistency_answer`)."""

    old_size: int
    new_size: int
    proof: tuple[str, ...]
    checkpoint: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "proof": list(self.proof),
            "checkpoint": self.checkpoint,
        }


class AuditLog:
    """The log in the guard's database. Thread-safe; processes may share the database."""

    def __init__(
        self,
        db: Database,
        signer: CheckpointSigner | None = None,
        *,
        key_path: Path | None = None,
        key_file: KeyFile[CheckpointSigner] | None = None,
        batch: BatchLimits | None = None,
    ) -> None:
        """``signer`` signs checkpoints; without one, the key file at ``key_path`` does, read
        when needed and again whenever it changes on disk (a missing or unusable file refuses
        appends, naming it), or ``key_file`` (a key from a setting or a key provider) does,
        and without any the log is read-only (appends are refused).
        ``batch`` bounds the group commit of :meth:`append` (default: up to 256 entries, no
        waiting); ``max_entries=1`` appends without it, one transaction per call."""
        self.db = db
        self.signer = signer
        if key_file is None and key_path is not None:
            key_file = checkpoint_key_file(key_path)
        self.key_file = key_file
        self._sequencer: Sequencer[PendingEntry, Receipt] = Sequencer(
            self._commit_batch, batch or BatchLimits()
        )

    @property
    def batch_limits(self) -> BatchLimits:
        return self._sequencer.limits

    @property
    def origin(self) -> str:
        """The origin line of this log's checkpoints, derived from its signing key (so it is
        unique per deployment; see :func:`guard.audit.checkpoint.log_origin`)."""
        return self.current_signer().origin

    def current_signer(self) -> CheckpointSigner:
        """The key the next checkpoint is signed with (:class:`Unavailable` if there is none,
        :class:`~guard.errors.KeyMaterialError` naming the file if it is missing or unusable)."""
        if self.signer is not None:
            return self.signer
        if self.key_file is None:
            raise Unavailable("the audit log has no checkpoint key: run `guard secrets init`")
        return self.key_file.current()

    _signer = current_signer

    def append(self, entry: dict[str, Any]) -> Receipt:
        """Append one entry and return its receipt, once the batch it joined has committed
        (with the batch's error, :class:`Unavailable` for a database fault, if it did not)."""
        if self.batch_limits.max_entries == 1:
            # The path before group commit: each caller its own transaction, all of them
            # contending for the state row (kept for comparison: bench/audit.py).
            with self.db.transaction() as session:
                return self.append_in(session, entry)
        return self._sequencer.submit(PendingEntry.of(entry))

    def _commit_batch(self, take: Callable[[], list[PendingEntry]]) -> list[Receipt]:
        """One batch of the group commit: lock, *then* take the queued entries (see
        :mod:`guard.audit.sequencer`), write them, commit."""
        signer = self._signer()
        try:
            with self.db.transaction() as session:
                start = lock_size(session)
                receipts = write_batch(session, signer, start, take())
        except IntegrityError as exc:
            # A row the batch writes exists already: the tables disagree with the size row
            # (damaged, or written around the lock). Refuse like any fault: 503, fail closed.
            raise Unavailable(
                "the audit log refused a batch: a row it writes exists already (the log's "
                f"tables are inconsistent): {exc.orig}"
            ) from exc
        return receipts  # only now: the transaction has committed

    def append_in(self, session: Session, entry: dict[str, Any]) -> Receipt:
        """Append within the caller's transaction, so the entry commits or rolls back with the
        change it records (the consent registry's writes do this). It takes the same lock as a
        batch (and holds it until the caller commits), signing its own checkpoint; the receipt
        holds only if that transaction commits."""
        return append_batch(session, self._signer(), [PendingEntry.of(entry)])[0]

    def entries_mentioning(
        self, reference: str, *, tenant: str | None = None
    ) -> list[tuple[int, dict[str, Any]]]:
        """Every entry whose text contains ``reference`` (a keyed hash), oldest first. With
        ``tenant``: only entries of that tenant (what another tenant's requests appended never
        shows, whatever it mentions)."""
        with self.db.transaction() as session:
            rows = session.execute(
                select(AuditEntryRow.idx, AuditEntryRow.entry)
                .where(AuditEntryRow.entry.contains(reference))
                .order_by(AuditEntryRow.idx)
            ).all()
        parsed = [(idx, json.loads(text)) for idx, text in rows]
        if tenant is None:
            return parsed
        return [(idx, entry) for idx, entry in parsed if entry.get("tenant") == tenant]

    def entries_referring(self, reference: str, *, tenant: str) -> list[tuple[int, dict[str, Any]]]:
        """``tenant``'s entries that carry ``reference`` among their keyed references
        (``subject_refs``, ``grant_refs``), oldest first, found through the search index
        (:mod:`guard.audit.index`) rather than by reading every entry."""
        with self.db.transaction() as session:
            rows = session.execute(
                select(AuditEntryRow.idx, AuditEntryRow.entry)
                .join(AuditRefIndexRow, AuditRefIndexRow.idx == AuditEntryRow.idx)
                .where(AuditRefIndexRow.tenant == tenant, AuditRefIndexRow.ref == reference)
                .order_by(AuditEntryRow.idx)
            ).all()
        # The index is derived from the entries; the entry itself is what is returned, and its
        # own tenant is checked again (the index is a cache, never the authority).
        parsed = [(idx, json.loads(text)) for idx, text in rows]
        return [(idx, entry) for idx, entry in parsed if entry.get("tenant") == tenant]

    def entries(
        self, *, start: int = 0, limit: int = 100, tenant: str | None = None
    ) -> list[tuple[int, dict[str, Any]]]:
        """Up to ``limit`` entries from index ``start`` on. With ``tenant``: only that tenant's
        entries and the global ones (policy and blocklist in force), which carry no tenant."""
        query = select(AuditEntryRow.idx, AuditEntryRow.entry).where(AuditEntryRow.idx >= start)
        if tenant is not None:
            # Canonical JSON spells the member exactly so; the parsed check below is the rule.
            member = '"tenant":' + json.dumps(tenant, ensure_ascii=False)
            query = query.where(
                AuditEntryRow.entry.contains(member) | ~AuditEntryRow.entry.contains('"tenant":')
            )
        with self.db.transaction() as session:
            rows = session.execute(query.order_by(AuditEntryRow.idx).limit(limit)).all()
        parsed = [(idx, json.loads(text)) for idx, text in rows]
        if tenant is None:
            return parsed
        return [(idx, entry) for idx, entry in parsed if entry.get("tenant", tenant) == tenant]

    def size(self) -> int:
        with self.db.transaction() as session:
            return _size(session)

    def entry(self, index: int) -> dict[str, Any]:
        with self.db.transaction() as session:
            row = session.get(AuditEntryRow, index)
            if row is None:
                raise NotFound(f"no audit entry {index}")
            parsed: dict[str, Any] = json.loads(row.entry)
            return parsed

    def entry_text(self, index: int) -> str:
        """Entry ``index`` as stored: the exact canonical JSON its leaf hash was made from
        (what an offline verifier hashes, rather than a re-serialisation)."""
        with self.db.transaction() as session:
            row = session.get(AuditEntryRow, index)
            if row is None:
                raise NotFound(f"no audit entry {index}")
            return row.entry

    def checkpoint(self, size: int | None = None) -> str:
        """The signed checkpoint at ``size`` (default: the latest); :class:`NotFound` naming the
        nearest checkpointed sizes when no batch ended at ``size``."""
        with self.db.transaction() as session:
            latest = _size(session)
            return _checkpoint_at(session, latest if size is None else size, latest).note

    def checkpoint_sizes(self, start: int = 0, limit: int = 1000) -> list[int]:
        """The sizes that have a signed checkpoint (batch ends), from ``start`` on, ascending."""
        with self.db.transaction() as session:
            return list(
                session.scalars(
                    select(AuditCheckpointRow.size)
                    .where(AuditCheckpointRow.size >= start)
                    .order_by(AuditCheckpointRow.size)
                    .limit(limit)
                )
            )

    def receipt(self, index: int, size: int | None = None) -> Receipt:
        """A receipt for entry ``index`` against the checkpoint at ``size`` (default: latest,
        which always has one); :class:`NotFound` naming the nearest checkpointed sizes when no
        batch ended at ``size``."""
        return self.receipts([index], size)[0]

    def receipts(self, indices: Sequence[int], size: int | None = None) -> list[Receipt]:
        """:meth:`receipt` for each of ``indices`` against one checkpoint, in one transaction
        whose stored subtrees are read once for all of them (a certificate proves dozens of
        entries; one transaction each re-read the same upper nodes every time)."""
        with self.db.transaction() as session:
            latest = _size(session)
            size = latest if size is None else size
            checkpoint = None
            nodes = StoredSubtrees(session)
            receipts = []
            for index in indices:
                if not 0 <= index < size <= latest:
                    raise NotFound(
                        f"entry {index} is not in a tree of size {size} (log size {latest})"
                    )
                entry = session.get(AuditEntryRow, index)
                if entry is None:
                    raise NotFound(f"entry {index} is missing; the log is damaged")
                checkpoint = checkpoint or _checkpoint_at(session, size, latest)
                proof = inclusion_proof(nodes, index, size)
                receipts.append(
                    Receipt(index, entry.leaf_hash, checkpoint.note, tuple(p.hex() for p in proof))
                )
            return receipts

    def index_of_decision(self, decision_id: str) -> int:
        """The index of the entry recording ``decision_id`` (:class:`NotFound` if none)."""
        with self.db.transaction() as session:
            index = session.scalars(
                select(AuditEntryRow.idx).where(AuditEntryRow.decision_id == decision_id)
            ).first()
        if index is None:
            raise NotFound(f"no audit entry for decision {decision_id}")
        return int(index)

    def receipt_for_decision(self, decision_id: str) -> Receipt:
        return self.receipt(self.index_of_decision(decision_id))

    def consistency(self, old_size: int, new_size: int) -> list[str]:
        """The bare RFC 6962 proof between any two sizes (no checkpoint needed to compute it)."""
        with self.db.transaction() as session:
            proof = consistency_proof(StoredSubtrees(session), old_size, new_size)
            return [step.hex() for step in proof]

    def prove_consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """The proof from the tree at ``old_size`` (any earlier checkpoint, or 0) to the one at
        ``new_size`` (default: the latest; it must be a checkpointed size, a batch end), with
        the latter's signed checkpoint, read in one transaction so the proof and the checkpoint
        are of the same tree."""
        with self.db.transaction() as session:
            latest = _size(session)
            if old_size > latest:
                raise Conflict(
                    f"the log has {latest} entries, fewer than the {old_size} of the checkpoint "
                    "held: it was truncated or rolled back since, or that checkpoint is "
                    "another log's"
                )
            size = latest if new_size is None else new_size
            if old_size > size:
                raise InvalidInput(f"no consistency proof from size {old_size} down to {size}")
            checkpoint = _checkpoint_at(session, size, latest)
            proof = consistency_proof(StoredSubtrees(session), old_size, size)
            return ConsistencyProof(
                old_size, size, tuple(step.hex() for step in proof), checkpoint.note
            )


def _size(session: Session) -> int:
    return int(session.scalars(select(AuditStateRow.size).where(AuditStateRow.id == 1)).one())


def _checkpoint_at(session: Session, size: int, latest: int) -> AuditCheckpointRow:
    """The checkpoint row at ``size``, or :class:`NotFound` saying why there is none: the log
    is empty or not that large yet, or no batch ended there (naming the checkpointed sizes on
    either side, so a client can ask for one of them instead)."""
    if latest == 0:
        raise NotFound("the audit log is empty: no checkpoint yet")
    if size > latest:
        raise NotFound(f"no checkpoint at size {size} yet (the log has {latest} entries)")
    if size < 1:
        raise NotFound("no checkpoint at size 0: the empty tree is not signed")
    row = session.get(AuditCheckpointRow, size)
    if row is not None:
        return row
    column = AuditCheckpointRow.size
    below = session.scalar(select(func.max(column)).where(column < size))
    above = session.scalar(select(func.min(column)).where(column > size))
    nearest = " and ".join(str(s) for s in (below, above) if s is not None) or "none"
    raise NotFound(
        f"no checkpoint at size {size}: one is signed per committed batch of appends, not per "
        f"entry; the nearest checkpointed sizes are {nearest}"
    )


def open_audit_log(settings: Settings, db: Database | None = None) -> AuditLog:
    """The log of the guard the settings describe; read-only (appends refused, i.e. every
    audited request fails closed) while its key is missing. Appends are batched as
    ``GUARD_AUDIT_BATCH_MAX_ENTRIES`` and ``GUARD_AUDIT_BATCH_MAX_WAIT_MS`` say."""
    limits = BatchLimits(settings.audit_batch_max_entries, settings.audit_batch_max_wait_ms)
    database = db or Database(settings.database_url)
    return AuditLog(database, key_file=audit_key_file(settings), batch=limits)


def audit_verifier_key(settings: Settings) -> str:
    """This guard's checkpoint verifier key string (``<data_dir>/keys/audit/checkpoint.vkey``),
    as the API and the console hand it out. A key from ``GUARD_AUDIT_SIGNING_KEY`` or the key
    provider has no such file: its verifier key is derived from the private key itself."""
    key_file = audit_key_file(settings)
    if key_file.from_setting or key_file.from_provider:
        return key_file.current().verifier_key
    path = settings.audit_keys_dir / PUBLIC_KEY_FILE
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise Unavailable(f"no audit public key at {path}: run `guard secrets init`") from exc


def audit_verifier(settings: Settings) -> CheckpointVerifier:
    """This guard's public checkpoint key, to verify its checkpoints with."""
    return CheckpointVerifier.from_key_string(audit_verifier_key(settings))
