"""Local secrets: the key that encrypts face templates at rest and the key for pseudonymous refs.

Both come from settings (``GUARD_TEMPLATE_KEY``, ``GUARD_HMAC_KEY``) or, for development, from
files under ``<data_dir>/keys/`` that ``guard init`` creates with mode 0600. Each is checked when
read (surrounding whitespace stripped): the HMAC key must be at least 32 bytes (the generated one
is 32 random bytes, url-safe base64: 44 characters, used as they are), the template key a Fernet
key. A missing or bad key is :class:`~guard.errors.KeyMaterialError` (an ``Unavailable``) naming
the file or setting: nothing that needs it may proceed. :class:`Keyring` re-reads a key file
that changed on disk (see :mod:`guard.keyfile`); with ``GUARD_KEY_PROVIDER`` a key whose setting
is unset is asked of the provider instead of read from its file (:mod:`guard.key_provider`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from guard.config import Settings
from guard.errors import Unavailable
from guard.key_provider import HMAC, TEMPLATE, key_provider
from guard.keyfile import KeyFile, KeyProblem, KeySource

TEMPLATE_KEY_FILE = "template.key"
HMAC_KEY_FILE = "hmac.key"
MIN_HMAC_KEY_BYTES = 32


class TemplateCipher:
    """Authenticated encryption (Fernet: AES-128-CBC + HMAC-SHA256) of face templates."""

    def __init__(self, key: bytes, *, source: str = "GUARD_TEMPLATE_KEY") -> None:
        self._fernet = Fernet(key)
        self.source = source  # the file or setting the key came from, for messages

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, ciphertext: bytes) -> bytes:
        try:
            return self._fernet.decrypt(ciphertext)
        except InvalidToken as exc:
            raise Unavailable(
                f"a face template cannot be decrypted: {self.source} is not the key it was "
                "stored with; put that key back (a changed key file is read again without a "
                "restart)"
            ) from exc


class KeyedHasher:
    """HMAC-SHA256 references: stable per deployment, meaningless without the key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def ref(self, kind: str, value: str) -> str:
        message = f"{kind}:{value}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def for_tenant(self, tenant: str) -> KeyedHasher:
        """The hasher of one tenant: its key is HMAC(this key, ``tenant-key:<tenant>``), so two
        tenants' references to one value differ and cannot be joined, and each can still be
        recomputed from the deployment key. Audit entries and manifests use these."""
        if not tenant:
            raise ValueError("a tenant hasher needs a tenant")
        message = f"tenant-key:{tenant}".encode()
        return KeyedHasher(hmac.new(self._key, message, hashlib.sha256).digest())


def create_dev_keys(keys_dir: Path) -> list[Path]:
    """Create missing key files (0600) under ``keys_dir``; return the ones created."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    created = []
    for name, make in (
        (TEMPLATE_KEY_FILE, Fernet.generate_key),
        (HMAC_KEY_FILE, lambda: base64.urlsafe_b64encode(os.urandom(32))),
    ):
        path = keys_dir / name
        if path.exists():
            continue
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(make())
        created.append(path)
    return created


def _hmac_key(data: bytes, where: str) -> KeyedHasher:
    key = data.strip()
    if len(key) < MIN_HMAC_KEY_BYTES:
        raise KeyProblem(
            f"is {len(key)} bytes; it needs at least {MIN_HMAC_KEY_BYTES} random bytes"
        )
    return KeyedHasher(key)


def _template_key(data: bytes, where: str) -> TemplateCipher:
    key = data.strip()
    if not key:
        raise KeyProblem("is 0 bytes; it needs a Fernet key, 32 bytes in url-safe base64")
    try:
        return TemplateCipher(key, source=where)
    except ValueError:  # the key's bytes stay out of the message
        raise KeyProblem(
            f"is not a valid Fernet key: {len(key)} bytes, where a Fernet key is 32 bytes "
            "in url-safe base64, 44 characters"
        ) from None


class Keyring:
    """The HMAC and template keys of one guard, each from its setting, else the key provider,
    else its file; a file is re-read on the first use after it changed (one ``stat`` per use).
    Thread-safe."""

    def __init__(self, settings: Settings) -> None:
        provider = key_provider(settings)
        missing = "run `guard secrets init` (or `guard init`) or set {}"
        self._hmac = KeyFile(
            KeySource(
                "hmac key",
                settings.keys_dir / HMAC_KEY_FILE,
                "GUARD_HMAC_KEY",
                settings.hmac_key,
                missing_fix=missing.format("GUARD_HMAC_KEY"),
                fix="delete it and run `guard secrets init`, or set GUARD_HMAC_KEY",
                setting_fix="set it to at least 32 random bytes, e.g. `openssl rand -base64 32`",
                provider=provider,
                provider_name=HMAC,
            ),
            _hmac_key,
        )
        self._template = KeyFile(
            KeySource(
                "template key",
                settings.keys_dir / TEMPLATE_KEY_FILE,
                "GUARD_TEMPLATE_KEY",
                settings.template_key,
                missing_fix=missing.format("GUARD_TEMPLATE_KEY"),
                fix=(
                    "put back the key the templates were stored with; with none stored yet, "
                    "delete it and run `guard secrets init`"
                ),
                setting_fix="set it to the key the templates were stored with",
                provider=provider,
                provider_name=TEMPLATE,
            ),
            _template_key,
        )

    def hasher(self) -> KeyedHasher:
        """The HMAC key as it is now (:class:`~guard.errors.KeyMaterialError` if unusable)."""
        return self._hmac.current()

    def cipher(self) -> TemplateCipher:
        """The template key as it is now (:class:`~guard.errors.KeyMaterialError` if unusable)."""
        return self._template.current()

    def validate_if_present(self) -> None:
        """Raise on a key that is set, or whose file exists, but is unusable (start-up)."""
        self._hmac.validate_if_present()
        self._template.validate_if_present()
