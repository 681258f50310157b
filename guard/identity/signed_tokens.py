"""One scheme for every link the person is handed: single-purpose, expiring, signed tokens.

    <prefix><object id>.<expiry, unix seconds>.<secret>.<tag>

The tag is an HMAC (the deployment's keyed hasher, under a purpose name) over the rest, so a
forged or altered token is refused before the database is read; the database keeps only the
SHA-256 of the secret, so a database reader cannot redeem it. Grant confirmations
(``lgc_``), consent requests (``lgr_``) and management links (``lgm_``) all use it, each with its
own purpose, so a token of one kind is never accepted as another.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from guard.errors import GuardError
from guard.secrets import KeyedHasher


class LinkExpired(GuardError):
    """A genuine link whose time ran out; the person asks for a new one."""

    code = "link_expired"
    http_status = 410


class LinkUsed(GuardError):
    """A genuine single-use link that was already used (or answered)."""

    code = "link_used"
    http_status = 410


@dataclass(frozen=True)
class SignedToken:
    """A token's parts once its tag checked out (its secret only as the SHA-256 stored)."""

    object_id: str
    expires_at: datetime
    secret_sha256: str


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SignedTokens:
    """Makes and checks the tokens of one purpose (``prefix`` + ids matching ``id_pattern``)."""

    def __init__(self, hasher: KeyedHasher, *, purpose: str, prefix: str, id_pattern: str) -> None:
        self._hasher = hasher
        self._purpose = purpose
        self._prefix = prefix
        self._pattern = re.compile(
            rf"^{re.escape(prefix)}({id_pattern})\.([0-9]{{1,12}})\.([A-Za-z0-9_-]{{43}})"
            r"\.([0-9a-f]{64})$"
        )

    def _tag(self, object_id: str, expiry: int, secret: str) -> str:
        return self._hasher.ref(self._purpose, f"{object_id}.{expiry}.{secret}")

    def make(self, object_id: str, expires_at: datetime) -> tuple[str, str]:
        """A new token for ``object_id`` valid until ``expires_at`` (whole seconds):
        ``(token, secret_sha256)``; store the digest, hand out the token."""
        expiry = int(expires_at.timestamp())
        secret = secrets.token_urlsafe(32)
        tag = self._tag(object_id, expiry, secret)
        token = f"{self._prefix}{object_id}.{expiry}.{secret}.{tag}"
        return token, secret_digest(secret)

    def parse(self, token: str) -> SignedToken | None:
        """The token's parts if it is well formed and its tag is ours, else ``None`` (whatever
        is wrong with it: nothing to probe). Expiry and the stored digest are the caller's."""
        parsed = self._pattern.match(token.strip())
        if parsed is None:
            return None
        object_id, expiry_text, secret, tag = parsed.groups()
        expiry = int(expiry_text)
        if not hmac.compare_digest(tag, self._tag(object_id, expiry, secret)):
            return None
        return SignedToken(object_id, datetime.fromtimestamp(expiry, UTC), secret_digest(secret))


def same_digest(stored: str | None, presented: str) -> bool:
    return stored is not None and hmac.compare_digest(stored, presented)
