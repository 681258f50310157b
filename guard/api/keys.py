"""API keys: who is calling, for which tenant, in which role.

A key is shown once when it is created (``lg_<id>.<secret>``) and stored only as the SHA-256 of
its secret (the secret is 256 random bits, so a plain hash cannot be brute-forced). A tenant's
key belongs to one tenant and acts as one requester inside it (``<tenant>`` or
``<tenant>/<app>``): that requester is the grantee consent grants name. An operator key belongs
to no tenant (the deployment's blocklist and public-figure links are its alone).

    >>> store = ApiKeyStore(db)                                           # doctest: +SKIP
    >>> issued = store.create(tenant="acme", role=Role.INTEGRATOR)        # doctest: +SKIP
    >>> store.authenticate(issued.token).tenant                           # doctest: +SKIP
    'acme'
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column

from guard.db import Base, Database, UTCDateTime
from guard.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from guard.identity import check_requester, check_tenant, in_tenant

TOKEN_PREFIX = "lg_"
_TOKEN = re.compile(r"^lg_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")


# What an operator key stores as its tenant: no tenant name can be "*" (see check_tenant).
NO_TENANT = "*"


class Role(StrEnum):
    """``operator``: deployment-wide, no tenant: the public-figure blocklist and linking a
    subject to a public figure, nothing of any tenant's. ``admin``: its tenant's usage flags and
    everything an integrator may. ``integrator``: checks, edits, stamps and its tenant's subjects
    and consents. ``auditor``: read-only access to its tenant's subjects, consents and audit
    entries."""

    OPERATOR = "operator"
    ADMIN = "admin"
    INTEGRATOR = "integrator"
    AUDITOR = "auditor"


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(String(128), index=True)
    role: Mapped[str] = mapped_column(String(16))
    requester: Mapped[str] = mapped_column(String(256))
    label: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class ApiKey:
    """A key's public facts (never its secret)."""

    id: str
    tenant: str
    role: Role
    requester: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None

    def owns(self, requester: str) -> bool:
        """Whether ``requester`` (a grantee id) lies in this key's tenant."""
        return in_tenant(requester, self.tenant)


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    token: str
    """The bearer token; it cannot be recovered later."""


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        tenant=row.tenant,
        role=Role(row.role),
        requester=row.requester,
        label=row.label,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(
        self,
        *,
        tenant: str | None,
        role: Role | str,
        requester: str | None = None,
        label: str | None = None,
    ) -> IssuedKey:
        """A new key: ``tenant`` is required for the tenant roles and refused for ``operator``."""
        try:
            role = Role(role)
        except ValueError as exc:
            raise InvalidInput(f"role must be one of {[r.value for r in Role]}") from exc
        if role is Role.OPERATOR:
            if tenant is not None or requester is not None:
                raise InvalidInput(
                    "an operator key belongs to no tenant: give no tenant or requester"
                )
            tenant = requester = NO_TENANT
        else:
            tenant = check_tenant(tenant or "")
        requester = check_requester(requester or tenant, tenant)
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        row = ApiKeyRow(
            id=key_id,
            secret_sha256=_digest(secret),
            tenant=tenant,
            role=role.value,
            requester=requester,
            label=label,
            created_at=datetime.now(UTC),
            revoked_at=None,
        )
        with self._db.transaction() as session:
            session.add(row)
        return IssuedKey(_key(row), f"{TOKEN_PREFIX}{key_id}.{secret}")

    def authenticate(self, token: str) -> ApiKey:
        """The key a bearer token belongs to; :class:`Unauthenticated` if it is malformed,
        unknown or revoked (one message for all three, so keys cannot be probed)."""
        parsed = _TOKEN.match(token.strip())
        refused = Unauthenticated("the API key is missing, unknown or revoked")
        if parsed is None:
            raise refused
        key_id, secret = parsed.groups()
        with self._db.transaction() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None or row.revoked_at is not None:
                raise refused
            if not hmac.compare_digest(row.secret_sha256, _digest(secret)):
                raise refused
            return _key(row)

    def active(self, key_id: str) -> ApiKey | None:
        """The key ``key_id`` if it exists and is not revoked (a console session's key is read
        again on every request, so revoking it ends its sessions)."""
        with self._db.transaction() as session:
            row = session.get(ApiKeyRow, key_id)
            return None if row is None or row.revoked_at is not None else _key(row)

    def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        if tenant is not None:
            query = query.where(ApiKeyRow.tenant == tenant)
        with self._db.transaction() as session:
            return [_key(row) for row in session.scalars(query)]

    def revoke(self, key_id: str) -> ApiKey:
        with self._db.transaction() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFound(f"no API key {key_id}")
            if row.revoked_at is not None:
                raise Conflict(f"API key {key_id} was already revoked at {row.revoked_at}")
            row.revoked_at = datetime.now(UTC)
            return _key(row)
