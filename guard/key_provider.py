"""Keys from a callback: ``GUARD_KEY_PROVIDER = "package.module:function"`` (a KMS or HSM hook).

The function is ``provider(name: str) -> bytes``; ``name`` is one of :data:`KEY_NAMES` and the
bytes are what that key's file would hold (the same text format, see docs/deploy.md, "Keys").
Every key whose own setting is unset is then asked of the provider instead of read from its file,
and each answer is kept for ``GUARD_KEY_PROVIDER_TTL_S`` seconds, then asked again, so a key
rotated in the KMS is used from then on (re-parsed only when its bytes changed).

Failure contract: the provider signals "this key cannot be had now" by raising
:class:`~guard.errors.Unavailable` (e.g. :class:`~guard.errors.KeyMaterialError`) or one of
:data:`PROVIDER_ERRORS`; the key is then unusable (:class:`~guard.errors.KeyMaterialError`
naming the provider and the key: readiness 503, decisions deny ``unavailable``) until an ask
succeeds again; a previous value is never served after a failure. Anything else it raises is a
bug in the provider and propagates as one.

    >>> provider = key_provider(settings)             # doctest: +SKIP
    >>> provider.fetch(HMAC)                          # doctest: +SKIP
    b'...'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from guard.errors import ConfigurationError, KeyMaterialError, Unavailable

if TYPE_CHECKING:
    from guard.config import Settings

# The names a provider is asked for (one per key of a guard).
HMAC = "hmac"
TEMPLATE = "template"
AUDIT_SIGNING = "audit_signing"
C2PA_PRIVATE_KEY = "c2pa_private_key"
C2PA_CERT_CHAIN = "c2pa_cert_chain"
KEY_NAMES = (HMAC, TEMPLATE, AUDIT_SIGNING, C2PA_PRIVATE_KEY, C2PA_CERT_CHAIN)

# What a provider may raise to say a key cannot be had now (a KMS timeout, a denied call, a
# missing secret); caught exactly, so a programming error in a provider is not mistaken for an
# outage. TimeoutError is an OSError, named for the reader.
PROVIDER_ERRORS: tuple[type[BaseException], ...] = (
    Unavailable,
    OSError,
    ValueError,
    LookupError,
    RuntimeError,
    TimeoutError,
)

# After a failed ask, the next one waits this long (at most the TTL): a KMS that is down is not
# asked once per request, and a recovered one is used again within a second.
RETRY_AFTER_FAILURE_S = 1.0

ProviderFunction = Callable[[str], bytes]


@dataclass(frozen=True)
class KeyProvider:
    """The loaded ``GUARD_KEY_PROVIDER`` function, with how long its answers are kept."""

    spec: str  # "package.module:function", for messages
    function: ProviderFunction
    ttl_s: float = 300.0

    @property
    def retry_after_failure_s(self) -> float:
        return min(self.ttl_s, RETRY_AFTER_FAILURE_S)

    def describe(self, name: str) -> str:
        return f"the key {name!r} from GUARD_KEY_PROVIDER={self.spec}"

    def fetch(self, name: str) -> bytes:
        """The bytes of key ``name`` now; :class:`KeyMaterialError` naming the provider and the
        key (with the provider's own message, which must not carry key bytes) if it fails."""
        try:
            data = self.function(name)
        except PROVIDER_ERRORS as exc:
            detail = exc.message if isinstance(exc, Unavailable) else str(exc)
            raise KeyMaterialError(
                f"{self.describe(name)} cannot be had: {type(exc).__name__}: {detail}"
            ) from exc
        if not isinstance(data, bytes):
            raise KeyMaterialError(
                f"{self.describe(name)} cannot be had: the provider returned "
                f"{type(data).__name__}, not bytes"
            )
        return data


def load_provider(spec: str, ttl_s: float = 300.0) -> KeyProvider:
    """Import ``package.module:function``; :class:`ConfigurationError` naming
    ``GUARD_KEY_PROVIDER`` if it is malformed, does not import or is not callable."""
    module_name, separator, attribute = spec.strip().partition(":")
    if not separator or not module_name or not attribute:
        raise ConfigurationError(
            f"GUARD_KEY_PROVIDER={spec!r} is not of the form package.module:function"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"GUARD_KEY_PROVIDER={spec!r}: the module {module_name!r} cannot be imported ({exc})"
        ) from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ConfigurationError(
            f"GUARD_KEY_PROVIDER={spec!r}: {module_name} has no function {attribute!r}"
        )
    return KeyProvider(spec.strip(), function, ttl_s)


def key_provider(settings: Settings) -> KeyProvider | None:
    """The provider the settings name, or None (keys come from their settings or files)."""
    if not settings.key_provider:
        return None
    return load_provider(settings.key_provider, settings.key_provider_ttl_s)
