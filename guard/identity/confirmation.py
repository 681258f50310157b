"""Person-confirmed consent: one-time tokens the person redeems to confirm a grant themselves.

An integrator's grant is ``attested``: it asserts the consent and keeps the SHA-256 of its
evidence. To raise it to ``person_confirmed`` the integrator asks for a confirmation token and
hands it to the person (the person's consent page redeems it). The token is

    lgc_<grant id>.<expiry, unix seconds>.<secret>.<tag>

where the tag is an HMAC (the deployment's keyed hasher) over the rest, so a forged or altered
token is refused before the database is read, and only the SHA-256 of the secret is stored, so
a database reader cannot redeem it (the scheme of :mod:`guard.identity.signed_tokens`, which
the person's consent requests and management links share). A token works once, until its
expiry, on a grant still in force; asking for a new token replaces the outstanding one. Issuing
and redeeming are audited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from guard.db import Database
from guard.errors import Conflict, InvalidInput, NotFound
from guard.identity.models import ConsentGrantRow, SubjectRow
from guard.identity.records import (
    ConsentGrant,
    ConsentLevel,
    GrantStatus,
    RegistryChange,
    grant_of,
    utc_now,
)
from guard.identity.signed_tokens import SignedTokens, same_digest
from guard.secrets import KeyedHasher

DEFAULT_VALIDITY = timedelta(days=7)


@dataclass(frozen=True)
class ConfirmationToken:
    token: str
    """Shown once; give it to the person (it cannot be recovered later)."""
    grant_id: str
    expires_at: datetime


class ConsentConfirmations:
    """Issues and redeems the one-time tokens of :mod:`guard.identity.confirmation`."""

    def __init__(
        self,
        db: Database,
        hasher: KeyedHasher,
        on_change: Callable[[Session, RegistryChange], None],
    ) -> None:
        self._db = db
        self._tokens = SignedTokens(
            hasher, purpose="consent-confirmation", prefix="lgc_", id_pattern="grt_[0-9a-f]{24}"
        )
        self._changed = on_change

    def issue(self, grant_id: str, *, valid_for: timedelta = DEFAULT_VALIDITY) -> ConfirmationToken:
        """A new token for ``grant_id`` (replacing any outstanding one), valid ``valid_for``."""
        if not timedelta(minutes=5) <= valid_for <= timedelta(days=30):
            raise InvalidInput("a confirmation token is valid for 5 minutes to 30 days")
        expires_at = (utc_now() + valid_for).replace(microsecond=0)
        token, digest = self._tokens.make(grant_id, expires_at)
        with self._db.transaction() as session:
            row, tenant = _grant_row(session, grant_id)
            if grant_of(row).status_at(utc_now()) is not GrantStatus.ACTIVE:
                raise Conflict(
                    f"grant {grant_id} is not in force; only a grant in force is confirmed"
                )
            if row.consent_level == ConsentLevel.PERSON_CONFIRMED:
                raise Conflict(f"grant {grant_id} was already confirmed by the person")
            row.confirmation_sha256 = digest
            row.confirmation_expires_at = expires_at
            change = RegistryChange(
                "consent_confirmation_requested", tenant, row.subject_id, grant_id=grant_id
            )
            self._changed(session, change)
        return ConfirmationToken(token, grant_id, expires_at)

    def open(self, token: str, *, now: datetime | None = None) -> ConsentGrant:
        """The grant a token would confirm, without spending it (the page that asks)."""
        now = now or utc_now()
        with self._db.transaction() as session:
            row, _ = self._checked(session, token, now)
            return grant_of(row)

    def redeem(self, token: str, *, now: datetime | None = None) -> ConsentGrant:
        """The person confirms: the grant becomes ``person_confirmed`` and the token is spent.

        A malformed, forged, spent or replaced token is :class:`InvalidInput` with one message
        (nothing to probe); an expired one says so; a grant no longer in force is a conflict."""
        now = now or utc_now()
        with self._db.transaction() as session:
            row, tenant = self._checked(session, token, now)
            grant_id = row.id
            row.consent_level = ConsentLevel.PERSON_CONFIRMED.value
            row.confirmed_at = now
            row.confirmation_sha256 = None
            row.confirmation_expires_at = None
            self._changed(
                session,
                RegistryChange("consent_confirmed", tenant, row.subject_id, grant_id=grant_id),
            )
            return grant_of(row)

    def _checked(self, session: Session, token: str, now: datetime) -> tuple[ConsentGrantRow, str]:
        """The grant row a valid, unspent, unexpired token names, in force (see ``redeem``)."""
        refused = InvalidInput("this confirmation link is not valid (used, replaced or mistyped)")
        parsed = self._tokens.parse(token)
        if parsed is None:
            raise refused
        if now >= parsed.expires_at:
            raise InvalidInput("this confirmation link has expired; ask for a new one")
        try:
            row, tenant = _grant_row(session, parsed.object_id)
        except NotFound:
            raise refused from None
        if not same_digest(row.confirmation_sha256, parsed.secret_sha256):
            raise refused
        if grant_of(row).status_at(now) is not GrantStatus.ACTIVE:
            raise Conflict(f"grant {parsed.object_id} is no longer in force")
        return row, tenant


def _grant_row(session: Session, grant_id: str) -> tuple[ConsentGrantRow, str]:
    """The grant's row and its subject's tenant (locked for update where the database can)."""
    row = session.get(ConsentGrantRow, grant_id, with_for_update=True)
    subject = session.get(SubjectRow, row.subject_id) if row is not None else None
    if row is None or subject is None:
        raise NotFound(f"no consent grant {grant_id}")
    return row, subject.tenant
