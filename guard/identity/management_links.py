"""The person's own links to their page: no password, no account, just a link they keep.

A management link (``lgm_…``, the scheme of :mod:`guard.identity.signed_tokens`) is issued when
the person confirms a consent request. It opens their page until it expires (a year), until
they rotate it (the link presented is revoked and one new link issued in its place: another
holder's link of the same subject is left alone, so rotating cannot lock anyone else out) or
revoke it. Accepting a later request issues no new link while the subject has a working one.
Only the SHA-256 of each secret is stored; the links go with the subject when the subject is erased.
Issuing, rotating and revoking are audited as the person's acts.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from guard.db import Database
from guard.errors import NotFound
from guard.identity.models import ManagementLinkRow, SubjectRow
from guard.identity.records import RegistryChange, utc_now
from guard.identity.signed_tokens import LinkExpired, SignedTokens, same_digest
from guard.secrets import KeyedHasher

LINK_VALIDITY = timedelta(days=365)
NOT_VALID = "this link to your page is not valid (mistyped, replaced or switched off)"


@dataclass(frozen=True)
class ManagementLink:
    token: str
    """Shown once, to the person."""
    link_id: str
    subject_id: str
    expires_at: datetime


@dataclass(frozen=True)
class LinkHolder:
    """Who a valid management link lets in."""

    link_id: str
    subject_id: str
    tenant: str


class ManagementLinks:
    def __init__(
        self,
        db: Database,
        hasher: KeyedHasher,
        on_change: Callable[[Session, RegistryChange], None],
    ) -> None:
        self._db = db
        self._tokens = SignedTokens(
            hasher, purpose="management-link", prefix="lgm_", id_pattern="mlk_[0-9a-f]{24}"
        )
        self._changed = on_change

    def issue_in(
        self, session: Session, subject: SubjectRow, kind: str = "management_link_issued"
    ) -> ManagementLink:
        """:meth:`issue` inside the caller's transaction (accepting a consent request issues
        the person's link in the same transaction as their grant)."""
        now = utc_now()
        expires_at = (now + LINK_VALIDITY).replace(microsecond=0)
        link_id = f"mlk_{secrets.token_hex(12)}"
        token, digest = self._tokens.make(link_id, expires_at)
        session.add(
            ManagementLinkRow(
                id=link_id,
                subject_id=subject.id,
                secret_sha256=digest,
                created_at=now,
                expires_at=expires_at,
                revoked_at=None,
            )
        )
        self._changed(session, RegistryChange(kind, subject.tenant, subject.id))
        return ManagementLink(token, link_id, subject.id, expires_at)

    def has_active_in(self, session: Session, subject_id: str, now: datetime) -> bool:
        """Whether ``subject_id`` has a link that still works (not revoked, not expired)."""
        found = session.scalar(
            select(ManagementLinkRow.id)
            .where(
                ManagementLinkRow.subject_id == subject_id,
                ManagementLinkRow.revoked_at.is_(None),
                ManagementLinkRow.expires_at > now,
            )
            .limit(1)
        )
        return found is not None

    def issue(self, subject_id: str) -> ManagementLink:
        """A new link for ``subject_id`` (their other links keep working)."""
        with self._db.transaction() as session:
            subject = session.get(SubjectRow, subject_id)
            if subject is None:
                raise NotFound(f"no subject {subject_id}")
            return self.issue_in(session, subject)

    def _holder_row(
        self, session: Session, token: str, now: datetime
    ) -> tuple[ManagementLinkRow, SubjectRow]:
        parsed = self._tokens.parse(token)
        if parsed is None:
            raise NotFound(NOT_VALID)
        row = session.get(ManagementLinkRow, parsed.object_id, with_for_update=True)
        subject = session.get(SubjectRow, row.subject_id) if row is not None else None
        if row is None or subject is None or row.revoked_at is not None:
            raise NotFound(NOT_VALID)
        if not same_digest(row.secret_sha256, parsed.secret_sha256):
            raise NotFound(NOT_VALID)
        if now >= row.expires_at:
            raise LinkExpired("this link to your page has expired; ask the organisation again")
        return row, subject

    def holder(self, token: str, *, now: datetime | None = None) -> LinkHolder:
        """Whom ``token`` lets in (:class:`NotFound` for any link that does not work)."""
        with self._db.transaction() as session:
            row, subject = self._holder_row(session, token, now or utc_now())
            return LinkHolder(row.id, subject.id, subject.tenant)

    def rotate(self, token: str) -> ManagementLink:
        """The presented link is switched off and one new link issued in its place (audited).

        Only the presented link: every holder of a link of the subject could rotate, so
        revoking them all would let one holder lock the others out."""
        now = utc_now()
        with self._db.transaction() as session:
            row, subject = self._holder_row(session, token, now)
            row.revoked_at = now
            return self.issue_in(session, subject, "management_link_rotated")

    def revoke(self, token: str) -> None:
        """This link works no more (audited)."""
        now = utc_now()
        with self._db.transaction() as session:
            row, subject = self._holder_row(session, token, now)
            row.revoked_at = now
            self._changed(
                session, RegistryChange("management_link_revoked", subject.tenant, subject.id)
            )
