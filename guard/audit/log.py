"""The audit log: append-only entries in the guard's database, a Merkle tree over them, a signed
checkpoint per append and a receipt for every entry.

Concurrency rule: an append first *writes* the single ``audit_state`` row (``UPDATE … SET size =
size``). On PostgreSQL that takes the row lock, on SQLite the database write lock, so appends
from any number of threads or processes run one at a time and the sequence is gapless; a failed
transaction rolls back whole (entry, nodes, checkpoint and size together).

Storage rule: every completed perfect subtree hash is stored (``audit_nodes``), so roots and
proofs for any size read O(log n) rows.

    >>> log = AuditLog(db, signer)                                      # doctest: +SKIP
    >>> receipt = log.append({"kind": "decision", "verdict": "deny"})   # doctest: +SKIP
    >>> verify_receipt(receipt, verifier)                               # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from guard.audit.checkpoint import (
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    Checkpoint,
    CheckpointSigner,
    CheckpointVerifier,
    checkpoint_key_file,
)
from guard.audit.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_inclusion,
)
from guard.config import Settings
from guard.db import Base, Database, UTCDateTime
from guard.errors import Conflict, InvalidInput, NotFound, Unavailable


class AuditEntryRow(Base):
    __tablename__ = "audit_entries"

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    leaf_hash: Mapped[str] = mapped_column(String(64))
    entry: Mapped[str] = mapped_column(Text)
    # Set for decision entries, so a decision's receipt can be found again by its id.
    decision_id: Mapped[str | None] = mapped_column(String(40), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditNodeRow(Base):
    __tablename__ = "audit_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpointRow(Base):
    __tablename__ = "audit_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text)


class AuditStateRow(Base):
    __tablename__ = "audit_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)


def canonical_json(entry: dict[str, Any]) -> bytes:
    """The bytes that are hashed: JSON with sorted keys, no spaces, UTF-8 (not ASCII-escaped)."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Receipt:
    """Everything needed to check offline that an entry is in the log: its index and leaf hash,
    the checkpoint signed right after it was appended, and the inclusion proof against it."""

    leaf_index: int
    leaf_hash: str
    checkpoint: str
    inclusion_proof: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "leaf_index": self.leaf_index,
            "leaf_hash": self.leaf_hash,
            "checkpoint": self.checkpoint,
            "inclusion_proof": list(self.inclusion_proof),
        }


def verify_receipt(
    receipt: Receipt, verifier: CheckpointVerifier, entry: bytes | None = None
) -> bool:
    """True when the checkpoint is signed by ``verifier`` and proves the leaf (and the entry's
    canonical bytes, when given, hash to that leaf)."""
    try:
        checkpoint = verifier.verify(receipt.checkpoint)
        leaf = bytes.fromhex(receipt.leaf_hash)
        proof = [bytes.fromhex(step) for step in receipt.inclusion_proof]
    except (InvalidInput, ValueError):
        return False
    if entry is not None and leaf_hash(entry) != leaf:
        return False
    return verify_inclusion(receipt.leaf_index, checkpoint.size, leaf, proof, checkpoint.root)


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


class _StoredSubtrees:
    """Perfect-subtree hashes read from ``audit_nodes`` within one session (memoised)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._cache: dict[tuple[int, int], bytes] = {}

    def subtree(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key not in self._cache:
            row = self._session.get(AuditNodeRow, key)
            if row is None:
                raise NotFound(f"audit tree node {key} is missing; the log is damaged")
            self._cache[key] = bytes.fromhex(row.hash)
        return self._cache[key]

    def remember(self, level: int, index: int, digest: bytes) -> None:
        self._cache[(level, index)] = digest


class AuditLog:
    """The log in the guard's database. Thread-safe; processes may share the database."""

    def __init__(
        self,
        db: Database,
        signer: CheckpointSigner | None = None,
        *,
        key_path: Path | None = None,
    ) -> None:
        """``signer`` signs checkpoints; without one, the key file at ``key_path`` does, read
        when needed and again whenever it changes on disk (a missing or unusable file refuses
        appends, naming it), and without either the log is read-only (appends are refused)."""
        self.db = db
        self.signer = signer
        self.key_file = checkpoint_key_file(key_path) if key_path is not None else None

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
        """Append one entry, sign the new tree head, return the entry's receipt."""
        with self.db.transaction() as session:
            return self.append_in(session, entry)

    def append_in(self, session: Session, entry: dict[str, Any]) -> Receipt:
        """Append within the caller's transaction, so the entry commits or rolls back with the
        change it records (the consent registry's writes do this)."""
        signer = self._signer()
        data = canonical_json(entry)
        leaf = leaf_hash(data)
        session.execute(
            update(AuditStateRow).where(AuditStateRow.id == 1).values(size=AuditStateRow.size)
        )
        index = session.scalars(select(AuditStateRow.size).where(AuditStateRow.id == 1)).one()
        now = datetime.now(UTC)
        decision_id = entry.get("decision_id") if entry.get("kind") == "decision" else None
        session.add(
            AuditEntryRow(
                idx=index,
                leaf_hash=leaf.hex(),
                entry=data.decode(),
                decision_id=decision_id,
                created_at=now,
            )
        )
        nodes = _StoredSubtrees(session)
        for level, node_index, digest in _completed_subtrees(nodes, index, leaf):
            session.add(AuditNodeRow(level=level, idx=node_index, hash=digest.hex()))
            nodes.remember(level, node_index, digest)
        size = index + 1
        root = root_hash(nodes, size)
        note = signer.sign(Checkpoint(signer.origin, size, root, now))
        session.add(AuditCheckpointRow(size=size, root=root.hex(), note=note))
        session.execute(update(AuditStateRow).where(AuditStateRow.id == 1).values(size=size))
        proof = inclusion_proof(nodes, index, size)
        return Receipt(index, leaf.hex(), note, tuple(step.hex() for step in proof))

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
            return int(
                session.scalars(select(AuditStateRow.size).where(AuditStateRow.id == 1)).one()
            )

    def entry(self, index: int) -> dict[str, Any]:
        with self.db.transaction() as session:
            row = session.get(AuditEntryRow, index)
            if row is None:
                raise NotFound(f"no audit entry {index}")
            parsed: dict[str, Any] = json.loads(row.entry)
            return parsed

    def checkpoint(self, size: int | None = None) -> str:
        """The signed checkpoint at ``size`` (default: the latest)."""
        with self.db.transaction() as session:
            if size is None:
                size = session.scalars(
                    select(AuditStateRow.size).where(AuditStateRow.id == 1)
                ).one()
            row = session.get(AuditCheckpointRow, size)
            if row is None:
                raise NotFound(f"no audit checkpoint at size {size}")
            return row.note

    def receipt(self, index: int, size: int | None = None) -> Receipt:
        """A receipt for entry ``index`` against the checkpoint at ``size`` (default: latest)."""
        with self.db.transaction() as session:
            latest = session.scalars(select(AuditStateRow.size).where(AuditStateRow.id == 1)).one()
            size = latest if size is None else size
            if not 0 <= index < size <= latest:
                raise NotFound(f"entry {index} is not in a tree of size {size} (log size {latest})")
            entry = session.get(AuditEntryRow, index)
            checkpoint = session.get(AuditCheckpointRow, size)
            if entry is None or checkpoint is None:
                raise NotFound(f"entry {index} or the checkpoint at {size} is missing")
            proof = inclusion_proof(_StoredSubtrees(session), index, size)
            return Receipt(index, entry.leaf_hash, checkpoint.note, tuple(p.hex() for p in proof))

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
        with self.db.transaction() as session:
            proof = consistency_proof(_StoredSubtrees(session), old_size, new_size)
            return [step.hex() for step in proof]

    def prove_consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """The proof from the tree at ``old_size`` (any earlier checkpoint, or 0) to the one at
        ``new_size`` (default: the latest), with the latter's signed checkpoint, read in one
        transaction so the proof and the checkpoint are of the same tree."""
        with self.db.transaction() as session:
            latest = session.scalars(select(AuditStateRow.size).where(AuditStateRow.id == 1)).one()
            if old_size > latest:
                raise Conflict(
                    f"the log has {latest} entries, fewer than the {old_size} of the checkpoint "
                    "held: it was truncated or rolled back since, or that checkpoint is "
                    "another log's"
                )
            size = latest if new_size is None else new_size
            if size == 0:
                raise NotFound("the audit log is empty: no checkpoint yet")
            if size > latest:
                raise NotFound(f"no checkpoint at size {size} yet (the log has {latest} entries)")
            if old_size > size:
                raise InvalidInput(f"no consistency proof from size {old_size} down to {size}")
            checkpoint = session.get(AuditCheckpointRow, size)
            if checkpoint is None:
                raise NotFound(f"the checkpoint at size {size} is missing; the log is damaged")
            proof = consistency_proof(_StoredSubtrees(session), old_size, size)
            return ConsistencyProof(
                old_size, size, tuple(step.hex() for step in proof), checkpoint.note
            )


def _completed_subtrees(
    nodes: _StoredSubtrees, index: int, leaf: bytes
) -> list[tuple[int, int, bytes]]:
    """The perfect subtrees that appending leaf ``index`` completes: the leaf, then each parent
    whose right child it finishes, reading each left sibling once."""
    completed = [(0, index, leaf)]
    level, node_index, digest = 0, index, leaf
    while node_index & 1:
        left = nodes.subtree(level, node_index - 1)
        digest = node_hash(left, digest)
        level, node_index = level + 1, node_index >> 1
        completed.append((level, node_index, digest))
    return completed


def open_audit_log(settings: Settings, db: Database | None = None) -> AuditLog:
    """The log of the guard the settings describe; read-only (appends refused, i.e. every
    audited request fails closed) while its key is missing."""
    path = settings.audit_keys_dir / PRIVATE_KEY_FILE
    return AuditLog(db or Database(settings.database_url), key_path=path)


def audit_verifier(settings: Settings) -> CheckpointVerifier:
    """This guard's public checkpoint key (``<data_dir>/keys/audit/checkpoint.vkey``)."""
    path = settings.audit_keys_dir / PUBLIC_KEY_FILE
    try:
        return CheckpointVerifier.from_key_string(path.read_text())
    except OSError as exc:
        raise Unavailable(f"no audit public key at {path}: run `guard secrets init`") from exc
