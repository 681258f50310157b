"""What the consent registry hands out and is told about: subjects, grants and their status,
match candidates, erasures and the changes it reports to the audit trail. Plain frozen
dataclasses, no database rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy.orm import Session


def utc_now() -> datetime:
    return datetime.now(UTC)


class GrantStatus(StrEnum):
    ACTIVE = "active"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class Subject:
    id: str
    tenant: str
    display_name: str | None
    public_figure_id: str | None
    created_at: datetime
    template_count: int


@dataclass(frozen=True)
class ConsentGrant:
    id: str
    subject_id: str
    grantee: str
    scopes: tuple[str, ...]
    not_before: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    evidence_sha256: str
    created_at: datetime

    def status_at(self, now: datetime) -> GrantStatus:
        """Revocation wins over everything; then the validity window."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return GrantStatus.REVOKED
        if now < self.not_before:
            return GrantStatus.NOT_YET_VALID
        if self.expires_at is not None and now >= self.expires_at:
            return GrantStatus.EXPIRED
        return GrantStatus.ACTIVE


@dataclass(frozen=True)
class SubjectCandidate:
    subject_id: str
    similarity: float


@dataclass(frozen=True)
class Erasure:
    subject_ref: str
    templates_removed: int
    grants_removed: int


@dataclass(frozen=True)
class RegistryChange:
    """What changed, for the audit trail (raw ids: the hook turns them into keyed hashes).

    ``kind``: subject_created, templates_enrolled, consent_granted, consent_revoked or
    subject_erased."""

    kind: str
    tenant: str
    subject_id: str
    grant_id: str | None = None
    grantee: str | None = None
    scopes: tuple[str, ...] = ()
    evidence_sha256: str | None = None
    count: int | None = None


ChangeHook = Callable[[Session, RegistryChange], None]
"""Called inside the transaction that makes a change: if it raises, the change is rolled back."""
