"""Questions a compliance console asks of the audit log, answered from its search index.

    >>> search = AuditSearch(db)                                                 # doctest: +SKIP
    >>> page = search.decisions(DecisionFilter(tenant="acme", verdict="deny"))   # doctest: +SKIP
    >>> search.decisions(DecisionFilter(tenant="acme"), after=page.next)         # doctest: +SKIP

Every question names a tenant (``None`` only for the operator, who sees the whole deployment),
and every query starts from an index that begins with it: a tenant's page never reads another
tenant's rows. Decisions page newest first by (time, index) with a keyset cursor, so the
10,000th page costs what the first does (``bench/console.py``). Rows carry keyed references
and codes, as the entries do; turning a requester reference into a name is the caller's (it
knows its tenant's keys).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Select, func, literal, select, tuple_

from guard.audit.index import AuditIndexRow, AuditReasonIndexRow, AuditRefIndexRow
from guard.db import Database, UTCDateTime
from guard.errors import InvalidInput

_I = AuditIndexRow
_R = AuditReasonIndexRow
PAGE_MAX = 500
MAX_INDEX = 2**63 - 1  # a 64-bit integer column's largest value
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Any time an entry can carry: a cursor the index made from an odd entry's time must parse.
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)


@dataclass(frozen=True)
class DecisionFilter:
    """Which decisions: all of one tenant's (``tenant=None``: every tenant's), narrowed by each
    field that is set. ``requesters`` holds keyed requester references (any of them)."""

    tenant: str | None
    since: datetime | None = None
    until: datetime | None = None
    verdict: str | None = None
    reason: str | None = None
    operation: str | None = None
    requesters: tuple[str, ...] | None = None
    policy_id: str | None = None
    policy_version: str | None = None


@dataclass(frozen=True, order=True)
class Cursor:
    """Where a page ended: the (time, index) of its last row; the next page starts below it."""

    at: datetime
    idx: int

    def token(self) -> str:
        micros = (self.at - _EPOCH) // timedelta(microseconds=1)
        return f"{micros}.{self.idx}"

    @classmethod
    def parse(cls, token: str) -> Cursor:
        """The cursor ``token()`` wrote; :class:`InvalidInput` for anything else (an index
        or a time no column can hold included, so a crafted cursor is a 400, not a fault)."""
        refused = InvalidInput(f"not a page cursor: {token[:40]!r}")
        try:
            micros, idx = (int(part) for part in token.split(".", 1))
            at = _EPOCH + timedelta(microseconds=micros)
        except (ValueError, OverflowError, OSError) as exc:
            raise refused from exc
        if not 0 <= idx <= MAX_INDEX or not _EARLIEST <= at <= _LATEST:
            raise refused
        return cls(at, idx)


@dataclass(frozen=True)
class DecisionRow:
    idx: int
    tenant: str
    at: datetime
    verdict: str
    operation: str
    stage: str
    policy_id: str
    policy_version: str
    requester: str
    decision_id: str
    reason_codes: tuple[str, ...]


@dataclass(frozen=True)
class DecisionPage:
    rows: tuple[DecisionRow, ...]
    next: Cursor | None
    """The cursor of the next page (``None``: this is the last)."""


@dataclass(frozen=True)
class HourCount:
    hour: datetime
    key: str
    """The verdict or the reason code counted."""
    count: int


def _hour(value: datetime) -> int:
    return int(value.timestamp()) // 3600


AnySelect = Select[*tuple[Any, ...]]


def _filtered(query: AnySelect, f: DecisionFilter) -> AnySelect:
    query = query.where(_I.kind == "decision")
    if f.tenant is not None:
        query = query.where(_I.tenant == f.tenant)
    if f.since is not None:
        query = query.where(_I.at >= f.since)
    if f.until is not None:
        query = query.where(_I.at < f.until)
    for column, value in (
        (_I.verdict, f.verdict),
        (_I.operation, f.operation),
        (_I.policy_id, f.policy_id),
        (_I.policy_version, f.policy_version),
    ):
        if value is not None:
            query = query.where(column == value)
    if f.requesters is not None:
        query = query.where(_I.requester.in_(f.requesters or ("",)))
    if f.reason is not None:
        query = query.join(_R, _R.idx == _I.idx).where(_R.code == f.reason)
        if f.tenant is not None:
            query = query.where(_R.tenant == f.tenant)
    return query


class AuditSearch:
    """Read-only questions over the search index (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def decisions(
        self, where: DecisionFilter, *, after: Cursor | None = None, limit: int = 50
    ) -> DecisionPage:
        """One page of decisions, newest first, starting below ``after``."""
        if not 1 <= limit <= PAGE_MAX:
            raise InvalidInput(f"a page holds 1 to {PAGE_MAX} decisions")
        query = _filtered(
            select(
                _I.idx,
                _I.tenant,
                _I.at,
                _I.verdict,
                _I.operation,
                _I.stage,
                _I.policy_id,
                _I.policy_version,
                _I.requester,
                _I.decision_id,
            ),
            where,
        )
        # With a reason, the page walks the reason table's (tenant, code, at, idx) index: a rare
        # code is found without reading every other decision of the tenant. Both tables hold
        # the same (at, idx) for a decision, so the order and the cursor are the same.
        order_at, order_idx = (_R.at, _R.idx) if where.reason is not None else (_I.at, _I.idx)
        if after is not None:
            # A row-value comparison, so that PostgreSQL walks the (…, at, idx) index from the
            # cursor on instead of filtering every newer row.
            query = query.where(
                tuple_(order_at, order_idx)
                < tuple_(literal(after.at, UTCDateTime()), literal(after.idx, BigInteger()))
            )
        query = query.order_by(order_at.desc(), order_idx.desc()).limit(limit + 1)
        with self._db.transaction() as session:
            found = session.execute(query).all()
            shown = found[:limit]
            codes: dict[int, list[str]] = {}
            if shown:
                reasons = session.execute(
                    select(_R.idx, _R.code)
                    .where(_R.idx.in_([row.idx for row in shown]))
                    .order_by(_R.idx, _R.code)
                )
                for idx, code in reasons:
                    codes.setdefault(int(idx), []).append(str(code))
        rows = tuple(
            DecisionRow(
                idx=int(row.idx),
                tenant=row.tenant,
                at=row.at,
                verdict=row.verdict or "",
                operation=row.operation or "",
                stage=row.stage or "",
                policy_id=row.policy_id or "",
                policy_version=row.policy_version or "",
                requester=row.requester or "",
                decision_id=row.decision_id or "",
                reason_codes=tuple(codes.get(int(row.idx), ())),
            )
            for row in shown
        )
        last = rows[-1] if rows and len(found) > limit else None
        return DecisionPage(rows, Cursor(last.at, last.idx) if last else None)

    def every_decision(
        self, where: DecisionFilter, *, batch: int = PAGE_MAX
    ) -> Iterator[DecisionRow]:
        """Every decision ``where`` selects, newest first, a page at a time (for exports)."""
        after: Cursor | None = None
        while True:
            page = self.decisions(where, after=after, limit=batch)
            yield from page.rows
            if page.next is None:
                return
            after = page.next

    def count(self, where: DecisionFilter, *, cap: int = 10_000) -> int:
        """How many decisions ``where`` selects, counted up to ``cap`` (``cap + 1``: more)."""
        inner = _filtered(select(_I.idx), where).limit(cap + 1).subquery()
        with self._db.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(inner)) or 0)

    def per_hour(self, tenant: str | None, since: datetime, until: datetime) -> list[HourCount]:
        """Decisions per hour and verdict in ``[since, until)`` (whole hours)."""
        query = select(_I.hour, _I.verdict, func.count()).where(
            _I.kind == "decision", _I.hour >= _hour(since), _I.hour < _hour(until)
        )
        if tenant is not None:
            query = query.where(_I.tenant == tenant)
        return self._hours(query.group_by(_I.hour, _I.verdict))

    def reasons_per_hour(
        self, tenant: str | None, since: datetime, until: datetime
    ) -> list[HourCount]:
        """Reason codes given per hour in ``[since, until)``."""
        query = select(_R.hour, _R.code, func.count()).where(
            _R.hour >= _hour(since), _R.hour < _hour(until)
        )
        if tenant is not None:
            query = query.where(_R.tenant == tenant)
        return self._hours(query.group_by(_R.hour, _R.code))

    def _hours(self, query: AnySelect) -> list[HourCount]:
        with self._db.transaction() as session:
            rows = session.execute(query).all()
        counts = [
            HourCount(datetime.fromtimestamp(int(hour) * 3600, UTC), key or "", int(count))
            for hour, key, count in rows
        ]
        return sorted(counts, key=lambda c: (c.hour, c.key))

    def top_requesters(
        self, tenant: str | None, since: datetime, until: datetime, *, limit: int = 10
    ) -> list[tuple[str, str, int]]:
        """The requesters with the most decisions in ``[since, until)``: (tenant, ref, count)."""
        query = select(_I.tenant, _I.requester, func.count().label("n")).where(
            _I.kind == "decision", _I.at >= since, _I.at < until
        )
        if tenant is not None:
            query = query.where(_I.tenant == tenant)
        query = (
            query.group_by(_I.tenant, _I.requester)
            .order_by(func.count().desc(), _I.requester)
            .limit(limit)
        )
        with self._db.transaction() as session:
            return [(t, r or "", int(n)) for t, r, n in session.execute(query)]

    def referring(self, tenant: str, reference: str, *, limit: int = 10_000) -> list[int]:
        """The indices of ``tenant``'s entries that carry ``reference`` (a subject's or a
        grant's keyed reference), oldest first."""
        with self._db.transaction() as session:
            return [
                int(idx)
                for idx in session.scalars(
                    select(AuditRefIndexRow.idx)
                    .where(AuditRefIndexRow.tenant == tenant, AuditRefIndexRow.ref == reference)
                    .order_by(AuditRefIndexRow.idx)
                    .limit(limit)
                )
            ]

    def decision_at(self, tenant: str | None, decision_id: str) -> tuple[int, str] | None:
        """The index and tenant of ``decision_id``'s decision entry, with ``tenant`` in the
        query: another tenant's id costs the one index lookup that finds nothing, as an id
        nobody has does (no entry is read to learn whose it is)."""
        query = select(_I.idx, _I.tenant).where(
            _I.decision_id == decision_id, _I.kind == "decision"
        )
        if tenant is not None:
            query = query.where(_I.tenant == tenant)
        with self._db.transaction() as session:
            found = session.execute(query.order_by(_I.idx).limit(1)).first()
        return None if found is None else (int(found[0]), str(found[1]))

    def releases_of(self, tenant: str | None, decision_id: str) -> list[int]:
        """The indices of the release entries of ``decision_id`` (an output that left)."""
        query = select(_I.idx).where(_I.decision_id == decision_id, _I.kind == "release")
        if tenant is not None:
            query = query.where(_I.tenant == tenant)
        with self._db.transaction() as session:
            return [int(i) for i in session.scalars(query.order_by(_I.idx))]

    def operations(self, tenant: str | None, *, limit: int = 50) -> list[str]:
        """The operations decisions were asked for (up to ``limit``), alphabetically: one
        index descent per name (the next name after the last), never a scan of the decisions
        (a tenant has a handful of operations and may have millions of decisions)."""
        found: list[str] = []
        with self._db.transaction() as session:
            while len(found) < limit:
                query = select(func.min(_I.operation)).where(_I.operation > (found or [""])[-1])
                if tenant is not None:
                    query = query.where(_I.tenant == tenant)
                name = session.scalar(query)
                if not name:
                    return found
                found.append(str(name))
        return found
