"""Consent requests: an integrator asks a person, the person answers on their own page.

The integrator names the subject (existing or just created), the requester, the scopes, how
long the grant would last and a message; it gets a single-use link (a signed, expiring token of
:mod:`guard.identity.signed_tokens`, ``lgr_…``) to send to the person. The person's answer
closes the request: ``accepted`` makes a ``person_confirmed`` grant in the same transaction,
``declined`` is recorded for the integrator to see. Creating and answering are audited; the
link then works no more.

Whether the photo the person shows matches the subject is the web layer's check, made before
:meth:`ConsentRequests.accept`; the request is locked and checked again inside it, so two
answers racing on one link cannot both land.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from guard.db import Database
from guard.errors import GuardError, InvalidInput, NotFound, UnprocessableInput
from guard.identity.management_links import ManagementLink, ManagementLinks
from guard.identity.models import ConsentGrantRow, ConsentRequestRow, SubjectRow
from guard.identity.records import (
    ConsentGrant,
    ConsentLevel,
    RegistryChange,
    grant_of,
    utc_now,
)
from guard.identity.signed_tokens import LinkExpired, LinkUsed, SignedTokens, same_digest
from guard.identity.tenancy import check_requester, check_tenant
from guard.requests import OPERATION_NAME
from guard.secrets import KeyedHasher

DEFAULT_LINK_VALIDITY = timedelta(days=7)
MAX_FAILED_PHOTOS = 5
"""Photos that could not be confirmed before the link locks (the page would otherwise let its
holder try face after face, to learn which are registered)."""
MAX_GRANT_DAYS = 3650
NOT_VALID = "this link is not valid: check that it was copied whole, or ask for a new one"


class LinkLocked(GuardError):
    """The request's link was locked after too many photos that could not be confirmed."""

    code = "link_locked"
    http_status = 410


LOCKED_MESSAGE = (
    "This link is locked: too many photos could not be confirmed. Nothing was agreed. Ask the "
    "organisation that sent it for a new link."
)


class RequestStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    LOCKED = "locked"
    """Too many photos could not be confirmed: the link opens nothing any more."""
    EXPIRED = "expired"
    """Never stored: a pending request whose link ran out."""


@dataclass(frozen=True)
class ConsentRequest:
    id: str
    subject_id: str
    tenant: str
    requester: str
    requester_display_name: str
    tenant_display_name: str
    scopes: tuple[str, ...]
    grant_days: int
    message: str
    expires_at: datetime
    status: RequestStatus
    grant_id: str | None
    created_at: datetime
    answered_at: datetime | None

    def status_at(self, now: datetime) -> RequestStatus:
        if self.status is RequestStatus.PENDING and now >= self.expires_at:
            return RequestStatus.EXPIRED
        return self.status

    def evidence_sha256(self) -> str:
        """The SHA-256 of what the person was shown and agreed to (the grant's evidence)."""
        shown = {
            "request": self.id,
            "tenant": self.tenant,
            "tenant_display_name": self.tenant_display_name,
            "requester": self.requester,
            "requester_display_name": self.requester_display_name,
            "scopes": list(self.scopes),
            "grant_days": self.grant_days,
            "message": self.message,
        }
        text = json.dumps(shown, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Accepted:
    request: ConsentRequest
    grant: ConsentGrant
    link: ManagementLink | None
    """The person's link to their own page (shown to them once); ``None`` when the subject
    already has a working link: a second link would let whoever accepted this request (the
    person, or anyone holding the request's link and a matching photo) in beside the first."""


@dataclass(frozen=True)
class IssuedConsentRequest:
    request: ConsentRequest
    token: str
    """Shown once: the integrator sends the link holding it to the person."""


def _request_of(row: ConsentRequestRow) -> ConsentRequest:
    return ConsentRequest(
        id=row.id,
        subject_id=row.subject_id,
        tenant=row.tenant,
        requester=row.requester,
        requester_display_name=row.requester_display_name,
        tenant_display_name=row.tenant_display_name,
        scopes=tuple(row.scopes),
        grant_days=row.grant_days,
        message=row.message,
        expires_at=row.expires_at,
        status=RequestStatus(row.status),
        grant_id=row.grant_id,
        created_at=row.created_at,
        answered_at=row.answered_at,
    )


def _clean_text(value: str, what: str, limit: int, *, keep_lines: bool = False) -> str:
    """``value`` with its spaces tidied (line breaks kept in a message); control characters
    (NUL, which PostgreSQL refuses, among them) are refused: they have no place on a page.
    So are Unicode format characters (category Cf: U+202E RIGHT-TO-LEFT OVERRIDE, zero-width
    spaces and joiners), which can make a name on the page read as another (422)."""
    if any((ord(c) < 32 and c not in "\n\r\t") or ord(c) == 127 for c in value):
        raise InvalidInput(f"{what} holds control characters")
    if any(unicodedata.category(c) == "Cf" for c in value):
        raise UnprocessableInput(
            f"{what} holds invisible formatting characters (such as U+202E), which could "
            "make it read as something else",
            code="invalid_text",
        )
    if keep_lines:
        cleaned = "\n".join(" ".join(line.split()) for line in value.strip().splitlines())
    else:
        cleaned = " ".join(value.split())
    if len(cleaned) > limit:
        raise InvalidInput(f"{what} is longer than {limit} characters")
    return cleaned


class ConsentRequests:
    """Creates consent requests and takes the person's answer through the request's link."""

    def __init__(
        self,
        db: Database,
        hasher: KeyedHasher,
        on_change: Callable[[Session, RegistryChange], None],
        links: ManagementLinks,
    ) -> None:
        self._links = links
        self._db = db
        self._tokens = SignedTokens(
            hasher, purpose="consent-request", prefix="lgr_", id_pattern="creq_[0-9a-f]{24}"
        )
        self._changed = on_change

    def create(
        self,
        subject_id: str | None,
        *,
        tenant: str,
        new_subject_name: str | None = None,
        requester: str,
        requester_display_name: str,
        tenant_display_name: str,
        scopes: Sequence[str],
        grant_days: int,
        message: str = "",
        valid_for: timedelta = DEFAULT_LINK_VALIDITY,
    ) -> IssuedConsentRequest:
        """A pending request for ``subject_id`` of ``tenant`` (``None``: a new subject named
        ``new_subject_name``, created in the same transaction, so a refused request leaves no
        subject behind) and its single-use link (audited)."""
        clean_scopes = sorted({s.strip() for s in scopes if s.strip()})
        if not clean_scopes:
            raise InvalidInput("a consent request needs at least one scope (operation name)")
        if not 1 <= grant_days <= MAX_GRANT_DAYS:
            raise InvalidInput(f"the grant lasts 1 to {MAX_GRANT_DAYS} days")
        if not timedelta(minutes=5) <= valid_for <= timedelta(days=30):
            raise InvalidInput("a consent request link is valid for 5 minutes to 30 days")
        requester_name = _clean_text(requester_display_name, "requester_display_name", 200)
        tenant_name = _clean_text(tenant_display_name, "tenant_display_name", 200)
        note = _clean_text(message, "message", 2000, keep_lines=True)
        if new_subject_name is not None:
            new_subject_name = _clean_text(new_subject_name, "display_name", 200) or None
        for scope in clean_scopes:
            if not OPERATION_NAME.fullmatch(scope):
                raise UnprocessableInput(
                    f"the scope {scope[:80]!r} is not an operation name: 1 to 64 characters "
                    "of a-z, 0-9, '_', '.' and '-'",
                    code="invalid_operation",
                )
        if not requester_name or not tenant_name:
            raise InvalidInput("the person must be told who asks: display names are required")
        now = utc_now()
        expires_at = (now + valid_for).replace(microsecond=0)
        request_id = f"creq_{secrets.token_hex(12)}"
        token, digest = self._tokens.make(request_id, expires_at)
        check_requester(requester, check_tenant(tenant))
        with self._db.transaction() as session:
            subject = self._subject(session, subject_id, tenant, new_subject_name, now)
            row = ConsentRequestRow(
                id=request_id,
                subject_id=subject.id,
                tenant=subject.tenant,
                requester=requester,
                requester_display_name=requester_name,
                tenant_display_name=tenant_name,
                scopes=clean_scopes,
                grant_days=grant_days,
                message=note,
                secret_sha256=digest,
                expires_at=expires_at,
                status=RequestStatus.PENDING.value,
                grant_id=None,
                created_at=now,
                answered_at=None,
            )
            session.add(row)
            self._changed(
                session,
                RegistryChange(
                    "consent_requested",
                    subject.tenant,
                    subject.id,
                    grantee=requester,
                    scopes=tuple(clean_scopes),
                ),
            )
            return IssuedConsentRequest(_request_of(row), token)

    def _subject(
        self,
        session: Session,
        subject_id: str | None,
        tenant: str,
        new_subject_name: str | None,
        now: datetime,
    ) -> SubjectRow:
        if subject_id is not None:
            subject = session.get(SubjectRow, subject_id)
            if subject is None or subject.tenant != tenant:
                raise NotFound(f"no subject {subject_id} in tenant {tenant}")
            return subject
        subject = SubjectRow(
            id=f"sub_{secrets.token_hex(12)}",
            tenant=tenant,
            display_name=new_subject_name,
            created_at=now,
        )
        session.add(subject)
        session.flush()
        self._changed(session, RegistryChange("subject_created", tenant, subject.id))
        return subject

    def get(self, request_id: str) -> ConsentRequest:
        with self._db.transaction() as session:
            row = session.get(ConsentRequestRow, request_id)
            if row is None:
                raise NotFound(f"no consent request {request_id}")
            return _request_of(row)

    def for_subject(self, subject_id: str) -> list[ConsentRequest]:
        with self._db.transaction() as session:
            rows = session.scalars(
                select(ConsentRequestRow)
                .where(ConsentRequestRow.subject_id == subject_id)
                .order_by(ConsentRequestRow.created_at, ConsentRequestRow.id)
            )
            return [_request_of(r) for r in rows]

    def _locked(self, session: Session, token: str, now: datetime) -> ConsentRequestRow:
        """The pending request behind ``token``, locked; else :class:`NotFound` (forged,
        altered, unknown: one message), :class:`LinkExpired` or :class:`LinkUsed`."""
        parsed = self._tokens.parse(token)
        if parsed is None:
            raise NotFound(NOT_VALID)
        row = session.get(ConsentRequestRow, parsed.object_id, with_for_update=True)
        if row is None:
            raise NotFound(NOT_VALID)
        if row.status == RequestStatus.LOCKED.value:
            raise LinkLocked(LOCKED_MESSAGE)
        if row.status != RequestStatus.PENDING.value:
            raise LinkUsed("this link was already used: the request has been answered")
        if not same_digest(row.secret_sha256, parsed.secret_sha256):
            raise NotFound(NOT_VALID)
        if now >= parsed.expires_at or now >= row.expires_at:
            raise LinkExpired("this link has expired: ask the sender for a new one")
        return row

    def open(self, token: str, *, now: datetime | None = None) -> ConsentRequest:
        """The pending request ``token`` opens (nothing changes)."""
        with self._db.transaction() as session:
            return _request_of(self._locked(session, token, now or utc_now()))

    def accept(self, token: str, *, now: datetime | None = None) -> Accepted:
        """The person agrees: a ``person_confirmed`` grant for the request's requester and
        scopes, lasting its days, whose evidence is the SHA-256 of what the person was shown,
        and the person's management link (unless the subject already has a working one), all in
        one transaction."""
        now = now or utc_now()
        with self._db.transaction() as session:
            row = self._locked(session, token, now)
            request = _request_of(row)
            grant_row = ConsentGrantRow(
                id=f"grt_{secrets.token_hex(12)}",
                subject_id=row.subject_id,
                grantee=row.requester,
                scopes=list(row.scopes),
                not_before=now,
                expires_at=now + timedelta(days=row.grant_days),
                revoked_at=None,
                evidence_sha256=request.evidence_sha256(),
                created_at=now,
                consent_level=ConsentLevel.PERSON_CONFIRMED.value,
                confirmed_at=now,
            )
            session.add(grant_row)
            row.status = RequestStatus.ACCEPTED.value
            row.grant_id = grant_row.id
            row.answered_at = now
            row.secret_sha256 = None
            for kind in ("consent_granted", "consent_confirmed"):
                self._changed(
                    session,
                    RegistryChange(
                        kind,
                        row.tenant,
                        row.subject_id,
                        grant_id=grant_row.id,
                        grantee=row.requester,
                        scopes=tuple(row.scopes),
                        evidence_sha256=grant_row.evidence_sha256,
                    ),
                )
            subject = session.get(SubjectRow, row.subject_id)
            assert subject is not None  # the request's foreign key
            link = (
                None
                if self._links.has_active_in(session, subject.id, now)
                else self._links.issue_in(session, subject)
            )
            return Accepted(_request_of(row), grant_of(grant_row), link)

    def photo_failed(self, token: str, *, now: datetime | None = None) -> bool:
        """One more photo shown on the request's page could not be confirmed; at
        :data:`MAX_FAILED_PHOTOS` the link is locked (audited: ``consent_request_locked``).
        Returns whether it is locked now."""
        now = now or utc_now()
        with self._db.transaction() as session:
            row = self._locked(session, token, now)
            row.failed_photos = (row.failed_photos or 0) + 1
            if row.failed_photos < MAX_FAILED_PHOTOS:
                return False
            row.status = RequestStatus.LOCKED.value
            row.answered_at = now
            row.secret_sha256 = None
            self._changed(
                session,
                RegistryChange(
                    "consent_request_locked",
                    row.tenant,
                    row.subject_id,
                    grantee=row.requester,
                    scopes=tuple(row.scopes),
                    count=row.failed_photos,
                ),
            )
            return True

    def decline(self, token: str, *, now: datetime | None = None) -> ConsentRequest:
        """The person says no: recorded (and audited) for the integrator to see."""
        now = now or utc_now()
        with self._db.transaction() as session:
            row = self._locked(session, token, now)
            row.status = RequestStatus.DECLINED.value
            row.answered_at = now
            row.secret_sha256 = None
            self._changed(
                session,
                RegistryChange(
                    "consent_request_declined",
                    row.tenant,
                    row.subject_id,
                    grantee=row.requester,
                    scopes=tuple(row.scopes),
                ),
            )
            return _request_of(row)
