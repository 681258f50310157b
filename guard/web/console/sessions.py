"""Console sessions: an auditor's, admin's or operator's API key exchanged for a short-lived
browser session, so the key itself never sits in a cookie or in the browser's history.

Signing in checks the key like the API does (unknown, revoked or the wrong role: refused), then
stores a new random secret's SHA-256 with the key's id and an absolute expiry
(``GUARD_CONSOLE_SESSION_MINUTES``, 30 by default); the browser holds the secret in an HttpOnly
``SameSite=Strict`` cookie. Every request reads the session *and the key* again: a revoked key,
an ended session (signed out) or an expired one is a sign-in page, never a stale view.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import String, update
from sqlalchemy.orm import Mapped, mapped_column

from guard.api.keys import ApiKey, ApiKeyStore, Role
from guard.db import Base, Database, UTCDateTime
from guard.errors import Forbidden, Unauthenticated

CONSOLE_ROLES = (Role.ADMIN, Role.AUDITOR, Role.OPERATOR)
SESSION_COOKIE = "lg_console"


class ConsoleSessionRow(Base):
    __tablename__ = "console_sessions"

    secret_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SignInNeeded(Unauthenticated):
    code = "console_sign_in"


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the key behind the session. ``tenant`` is ``None`` for the operator,
    who sees every tenant's decisions (pseudonymous, as the log is) but no tenant's people."""

    key: ApiKey
    expires_at: datetime

    @property
    def tenant(self) -> str | None:
        return None if self.key.role is Role.OPERATOR else self.key.tenant

    @property
    def operator(self) -> bool:
        return self.key.role is Role.OPERATOR

    def require_tenant(self) -> str:
        """The viewer's tenant; :class:`Forbidden` for the operator (no tenant's people)."""
        if self.tenant is None:
            raise Forbidden(
                "the operator sees decisions across tenants, not a tenant's people: sign in "
                "with that tenant's auditor or admin key"
            )
        return self.tenant


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ConsoleSessions:
    def __init__(self, db: Database, keys: ApiKeyStore, *, minutes: int) -> None:
        self._db = db
        self._keys = keys
        self._lifetime = timedelta(minutes=minutes)

    def sign_in(self, token: str) -> tuple[str, Viewer]:
        """A new session for the key ``token`` (its secret, for the cookie, and the viewer)."""
        key = self._keys.authenticate(token)
        if key.role not in CONSOLE_ROLES:
            raise Forbidden(
                f"an {key.role.value} key cannot open the console; use an auditor's, an "
                "admin's or the operator's key"
            )
        secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        row = ConsoleSessionRow(
            secret_sha256=_digest(secret),
            key_id=key.id,
            created_at=now,
            expires_at=now + self._lifetime,
            ended_at=None,
        )
        with self._db.transaction() as session:
            session.add(row)
        return secret, Viewer(key, row.expires_at)

    def viewer(self, secret: str | None) -> Viewer:
        """The viewer of a session cookie; :class:`SignInNeeded` if there is none that works."""
        needed = SignInNeeded("sign in to the console with an auditor or admin key")
        if not secret or len(secret) > 128:
            raise needed
        with self._db.transaction() as session:
            row = session.get(ConsoleSessionRow, _digest(secret))
            if row is None or row.ended_at is not None or row.expires_at <= datetime.now(UTC):
                raise needed
            key_id, expires_at = row.key_id, row.expires_at
        key = self._keys.active(key_id)
        if key is None or key.role not in CONSOLE_ROLES:
            raise needed
        return Viewer(key, expires_at)

    def sign_out(self, secret: str | None) -> None:
        """End the session (if any): its cookie opens nothing from now on."""
        if not secret:
            return
        with self._db.transaction() as session:
            session.execute(
                update(ConsoleSessionRow)
                .where(
                    ConsoleSessionRow.secret_sha256 == _digest(secret),
                    ConsoleSessionRow.ended_at.is_(None),
                )
                .values(ended_at=datetime.now(UTC))
            )
