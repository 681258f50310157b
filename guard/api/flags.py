"""Usage flags: a key that crossed a monitoring limit is flagged (and throttled) until an admin
clears the flag. Flags live in the database so every worker sees them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from guard.api.keys import ApiKey
from guard.db import Base, Database, UTCDateTime
from guard.errors import Conflict, NotFound
from guard.safety import UsageAlert


class UsageFlagRow(Base):
    __tablename__ = "usage_flags"
    __table_args__ = (
        UniqueConstraint("key_id", "rule", "window_start", name="uq_usage_flags_window"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), ForeignKey("api_keys.id"), index=True)
    tenant: Mapped[str] = mapped_column(String(128))
    rule: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    window_start: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class UsageFlag:
    id: str
    key_id: str
    tenant: str
    rule: str
    detail: str
    created_at: datetime
    cleared_at: datetime | None


def _flag(row: UsageFlagRow) -> UsageFlag:
    return UsageFlag(
        row.id, row.key_id, row.tenant, row.rule, row.detail, row.created_at, row.cleared_at
    )


class FlagStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def raise_flag(self, key: ApiKey, alert: UsageAlert) -> UsageFlag | None:
        """Record the alert; ``None`` when another worker already flagged this window."""
        row = UsageFlagRow(
            id=f"flg_{secrets.token_hex(8)}",
            key_id=key.id,
            tenant=key.tenant,
            rule=alert.rule,
            detail=alert.detail,
            window_start=alert.window_start,
            created_at=datetime.now(UTC),
            cleared_at=None,
        )
        try:
            with self._db.transaction() as session:
                session.add(row)
        except IntegrityError:
            return None
        return _flag(row)

    def is_flagged(self, key_id: str) -> bool:
        with self._db.transaction() as session:
            found = session.scalar(
                select(UsageFlagRow.id)
                .where(UsageFlagRow.key_id == key_id, UsageFlagRow.cleared_at.is_(None))
                .limit(1)
            )
            return found is not None

    def list_flags(
        self, tenant: str | None, *, include_cleared: bool = False, limit: int | None = None
    ) -> list[UsageFlag]:
        """The flags of ``tenant`` (``None``: every tenant's, the operator's console view),
        oldest first, at most ``limit`` of them."""
        query = select(UsageFlagRow)
        if tenant is not None:
            query = query.where(UsageFlagRow.tenant == tenant)
        if not include_cleared:
            query = query.where(UsageFlagRow.cleared_at.is_(None))
        with self._db.transaction() as session:
            rows = session.scalars(
                query.order_by(UsageFlagRow.created_at, UsageFlagRow.id).limit(limit)
            )
            return [_flag(row) for row in rows]

    def clear(self, flag_id: str, tenant: str) -> UsageFlag:
        with self._db.transaction() as session:
            row = session.get(UsageFlagRow, flag_id)
            if row is None or row.tenant != tenant:
                raise NotFound(f"no usage flag {flag_id}")
            if row.cleared_at is not None:
                raise Conflict(f"flag {flag_id} was already cleared at {row.cleared_at}")
            row.cleared_at = datetime.now(UTC)
            return _flag(row)
