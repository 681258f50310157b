"""What the consent registry hands out and is told about: subjects, grants and their status,
match candidates, erasures and the changes it reports to the audit trail. Plain frozen
dataclasses, no database rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guard.errors import InvalidInput, NotFound
from guard.identity.models import ConsentGrantRow, FaceTemplateRow, SubjectRow


def utc_now() -> datetime:
    return datetime.now(UTC)


class GrantStatus(StrEnum):
    ACTIVE = "active"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class PublicFigureLink:
    """An operator's verified statement that a subject is this blocklisted figure: only then
    may the figure's own grants lift the public-figure block."""

    figure_id: str
    linked_by: str
    """The operator key that linked (its id, never its secret)."""
    linked_at: datetime
    evidence_sha256: str
    """SHA-256 of the verification document the operator relied on."""


@dataclass(frozen=True)
class Subject:
    id: str
    tenant: str
    display_name: str | None
    public_figure_link: PublicFigureLink | None
    created_at: datetime
    template_count: int

    @property
    def public_figure_id(self) -> str | None:
        """The figure this subject is verified to be, if an operator linked one."""
        return self.public_figure_link.figure_id if self.public_figure_link else None


class ConsentLevel(StrEnum):
    """How a grant was obtained: ``attested`` (the integrator asserts it, with the SHA-256 of
    its evidence) or ``person_confirmed`` (the person confirmed it themselves by redeeming a
    one-time confirmation token). Policies may require a level (``consent_level``)."""

    ATTESTED = "attested"
    PERSON_CONFIRMED = "person_confirmed"


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
    level: ConsentLevel = ConsentLevel.ATTESTED
    confirmed_at: datetime | None = None

    def status_at(self, now: datetime) -> GrantStatus:
        """Revocation wins over everything; then the validity window."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return GrantStatus.REVOKED
        if now < self.not_before:
            return GrantStatus.NOT_YET_VALID
        if self.expires_at is not None and now >= self.expires_at:
            return GrantStatus.EXPIRED
        return GrantStatus.ACTIVE


def grant_of(row: ConsentGrantRow) -> ConsentGrant:
    return ConsentGrant(
        id=row.id,
        subject_id=row.subject_id,
        grantee=row.grantee,
        scopes=tuple(row.scopes),
        not_before=row.not_before,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        evidence_sha256=row.evidence_sha256,
        created_at=row.created_at,
        level=ConsentLevel(row.consent_level or ConsentLevel.ATTESTED),
        confirmed_at=row.confirmed_at,
    )


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

    ``kind``: subject_created, templates_enrolled, templates_removed, consent_granted,
    consent_revoked, subject_erased, public_figure_linked or public_figure_unlinked (``actor``:
    the operator key, ``figure_id``: the figure); consent_confirmation_requested,
    consent_confirmed; and from the person's own pages (guard/web): consent_requested,
    consent_request_declined, consent_request_locked (too many photos could not be confirmed),
    consent_withdrawn and subject_erased_by_person (the person's own acts),
    management_link_issued, management_link_rotated, management_link_revoked."""

    kind: str
    tenant: str
    subject_id: str
    grant_id: str | None = None
    grantee: str | None = None
    scopes: tuple[str, ...] = ()
    evidence_sha256: str | None = None
    count: int | None = None
    figure_id: str | None = None
    actor: str | None = None


ChangeHook = Callable[[Session, RegistryChange], None]
"""Called inside the transaction that makes a change: if it raises, the change is rolled back."""


def subject_row(session: Session, subject_id: str) -> SubjectRow:
    row = session.get(SubjectRow, subject_id)
    if row is None:
        raise NotFound(f"no subject {subject_id}")
    return row


def template_count(session: Session, subject_id: str) -> int:
    return int(
        session.scalar(select(func.count()).where(FaceTemplateRow.subject_id == subject_id)) or 0
    )


def subject_of(row: SubjectRow, template_count: int) -> Subject:
    link = None
    if row.public_figure_id is not None:
        assert row.public_figure_linked_by and row.public_figure_linked_at  # set together
        link = PublicFigureLink(
            figure_id=row.public_figure_id,
            linked_by=row.public_figure_linked_by,
            linked_at=row.public_figure_linked_at,
            evidence_sha256=row.public_figure_link_evidence or "",
        )
    return Subject(
        id=row.id,
        tenant=row.tenant,
        display_name=row.display_name,
        public_figure_link=link,
        created_at=row.created_at,
        template_count=template_count,
    )


def validate_sha256(value: str) -> str:
    lowered = value.lower()
    if len(lowered) != 64 or any(c not in "0123456789abcdef" for c in lowered):
        raise InvalidInput("evidence must be the SHA-256 (64 hex digits) of the document")
    return lowered
