"""The audit log's search index: what an entry says, in columns a query can use.

The entries are JSON text, hashed as they are; a compliance console that filters 10^6 decisions
by verdict, reason or requester, or a person's page that lists the decisions that matched them,
cannot read every entry to answer. Each append therefore also writes, in the same transaction
(:func:`guard.audit.batch.write_batch`):

- ``audit_index``: one row per entry: its tenant (``""`` for the global ones: policy and
  blocklist in force), kind, time, hour and, for a decision, the verdict, operation, stage,
  policy, requester reference and decision id (for a release: the decision it released);
- ``audit_reason_index``: one row per reason code of a decision;
- ``audit_ref_index``: one row per keyed reference (``subject_refs``, ``grant_refs``) an entry
  carries.

The index is derived from the entries alone (migration 0010 built it for the entries written
before it, with :func:`index_rows`, the function appends use), so it holds nothing the log
does not: keyed references, never names. It is a cache of the log, not evidence: a page shows
what it finds and proves it with the entry and its receipt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Index, String, Table, insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from guard.db import Base, UTCDateTime

GLOBAL_TENANT = ""
"""The tenant column of entries that belong to no tenant (policy and blocklist in force)."""

_SHORT = 64  # verdicts, operations, stages, policy versions, references (hex HMACs)


class AuditIndexRow(Base):
    __tablename__ = "audit_index"

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    tenant: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(_SHORT))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Whole hours since the epoch: the overview counts per hour without a database's own date
    # functions (SQLite and PostgreSQL spell them differently).
    hour: Mapped[int] = mapped_column(BigInteger)
    verdict: Mapped[str | None] = mapped_column(String(_SHORT))
    operation: Mapped[str | None] = mapped_column(String(_SHORT))
    stage: Mapped[str | None] = mapped_column(String(16))
    policy_id: Mapped[str | None] = mapped_column(String(128))
    policy_version: Mapped[str | None] = mapped_column(String(_SHORT))
    requester: Mapped[str | None] = mapped_column(String(_SHORT))
    decision_id: Mapped[str | None] = mapped_column(String(40))

    # Newest first within a tenant, by time and index: every filter has an index that starts
    # with the tenant and the filtered column and ends in (at, idx), the page order.
    __table_args__ = (
        Index("ix_audit_index_kind", "tenant", "kind", "at", "idx"),
        Index("ix_audit_index_all", "kind", "at", "idx"),  # the operator's, across tenants
        Index("ix_audit_index_verdict", "tenant", "verdict", "at", "idx"),
        Index("ix_audit_index_operation", "tenant", "operation", "at", "idx"),
        Index("ix_audit_index_requester", "tenant", "requester", "at", "idx"),
        Index("ix_audit_index_policy", "tenant", "policy_version", "at", "idx"),
        Index("ix_audit_index_hour", "tenant", "kind", "hour", "verdict"),
        Index("ix_audit_index_decision", "decision_id"),
        # The operator's, across tenants: operations seen, and the charts' hourly counts.
        Index("ix_audit_index_operation_all", "operation"),
        Index("ix_audit_index_hour_all", "kind", "hour", "verdict"),
    )


class AuditReasonIndexRow(Base):
    __tablename__ = "audit_reason_index"

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    code: Mapped[str] = mapped_column(String(_SHORT), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    hour: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_audit_reason_index_code", "tenant", "code", "at", "idx"),
        Index("ix_audit_reason_index_hour", "tenant", "hour", "code"),
        Index("ix_audit_reason_index_hour_all", "hour", "code"),
    )


class AuditRefIndexRow(Base):
    __tablename__ = "audit_ref_index"

    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    ref: Mapped[str] = mapped_column(String(_SHORT), primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


@dataclass(frozen=True)
class IndexRows:
    """The index rows of one entry, made in the appending caller's thread."""

    entry: dict[str, Any]
    reasons: tuple[dict[str, Any], ...] = ()
    refs: tuple[dict[str, Any], ...] = ()

    def at(self, idx: int) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        """The rows with the entry's index filled in (known only under the append lock)."""
        return (
            {**self.entry, "idx": idx},
            [{**row, "idx": idx} for row in self.reasons],
            [{**row, "idx": idx} for row in self.refs],
        )


def _text(value: object, limit: int = _SHORT) -> str | None:
    """A column value from an entry member: strings only, cut to the column's width (the
    entry itself keeps the whole value; the index only has to find it)."""
    return value[:limit] if isinstance(value, str) else None


EPOCH = datetime.fromtimestamp(0, UTC)


def entry_time(entry: dict[str, Any]) -> datetime | None:
    """An entry's ``time`` as an aware UTC datetime (one without a zone is read as UTC, as the
    guard writes them); ``None`` when it has none a datetime can hold."""
    try:
        when = datetime.fromisoformat(str(entry["time"]))
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (KeyError, ValueError, OverflowError):
        return None


def entry_tenant(entry: dict[str, Any]) -> str:
    """The tenant an entry belongs to: its ``tenant`` member, or :data:`GLOBAL_TENANT` when it
    has none that names one (the policy and blocklist in force; any odd entry)."""
    return _text(entry.get("tenant"), 128) or GLOBAL_TENANT


def index_rows(entry: dict[str, Any]) -> IndexRows:
    """What the index holds for ``entry`` (any kind; decisions fill the most columns)."""
    tenant = entry_tenant(entry)
    # Every entry the guard writes has a time; one that does not is indexed at the epoch
    # rather than refused (the log accepts it, so the index must too).
    at = entry_time(entry) or EPOCH
    hour = int(at.timestamp()) // 3600
    decision = entry.get("kind") == "decision"
    release = entry.get("kind") == "release"
    recorded_policy = entry.get("policy")
    policy: dict[str, Any] = recorded_policy if isinstance(recorded_policy, dict) else {}
    row = {
        "tenant": tenant,
        "kind": _text(entry.get("kind")) or "",
        "at": at,
        "hour": hour,
        "verdict": _text(entry.get("verdict")) if decision else None,
        "operation": _text(entry.get("operation")) if decision else None,
        "stage": _text(entry.get("stage"), 16) if decision else None,
        "policy_id": _text(policy.get("id"), 128) if decision else None,
        "policy_version": _text(policy.get("version")) if decision else None,
        "requester": _text(entry.get("requester")) if decision else None,
        # A release names the decision it released: the decision's page finds it by this.
        "decision_id": _text(entry.get("decision_id"), 40) if decision or release else None,
    }
    codes = entry.get("reason_codes") if decision else None
    # Cut to the column first, then deduplicated: one row per (entry, code) and (entry, ref).
    reasons = tuple(
        {"code": code, "tenant": tenant, "at": at, "hour": hour}
        for code in dict.fromkeys(c[:_SHORT] for c in (codes or ()) if isinstance(c, str) and c)
    )
    refs: dict[str, None] = {}
    for member in ("subject_refs", "grant_refs"):
        values = entry.get(member)
        if isinstance(values, list):
            refs.update((v[:_SHORT], None) for v in values if isinstance(v, str) and v)
    return IndexRows(row, reasons, tuple({"tenant": tenant, "ref": ref} for ref in refs))


def _table(row: type[Base]) -> Table:
    return Base.metadata.tables[str(row.__tablename__)]


_INDEX = _table(AuditIndexRow)
_REASONS = _table(AuditReasonIndexRow)
_REFS = _table(AuditRefIndexRow)


def write_index(session: Session, rows: Sequence[tuple[int, IndexRows]]) -> None:
    """Insert the index rows of the entries at the given indices (one bulk insert a table)."""
    entries: list[dict[str, Any]] = []
    reasons: list[dict[str, Any]] = []
    refs: list[dict[str, Any]] = []
    for idx, made in rows:
        entry, entry_reasons, entry_refs = made.at(idx)
        entries.append(entry)
        reasons.extend(entry_reasons)
        refs.extend(entry_refs)
    if entries:
        session.execute(insert(_INDEX), entries)
    if reasons:
        session.execute(insert(_REASONS), reasons)
    if refs:
        session.execute(insert(_REFS), refs)
