"""The audit log's tables and the stored-subtree reader every proof goes through.

``audit_entries`` (one row per entry), ``audit_nodes`` (every completed perfect subtree hash),
``audit_checkpoints`` (one signed checkpoint per committed batch, keyed by the size it signs) and
``audit_state`` (one row: the size; writing it is the append lock). Migration 0003 made them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from guard.db import Base, UTCDateTime
from guard.errors import NotFound


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


class StoredSubtrees:
    """Perfect-subtree hashes read from ``audit_nodes`` within one session (memoised)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._cache: dict[tuple[int, int], bytes] = {}

    def preload(self, keys: Iterable[tuple[int, int]]) -> None:
        """Read the nodes ``(level, index)`` in one query (an append needs up to 64 of them;
        one round trip each was most of an append's statements)."""
        wanted = [key for key in keys if key not in self._cache]
        if not wanted:
            return
        # OR of key equalities, not a row-value IN: SQLite scans the whole table for the latter
        # and uses the primary key for the former (PostgreSQL does for both).
        matches = [
            (AuditNodeRow.level == level) & (AuditNodeRow.idx == index) for level, index in wanted
        ]
        rows = self._session.execute(
            select(AuditNodeRow.level, AuditNodeRow.idx, AuditNodeRow.hash).where(or_(*matches))
        ).all()
        for level, index, digest in rows:
            self._cache[(level, index)] = bytes.fromhex(digest)

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
