"""Local secrets: the key that encrypts face templates at rest and the key for pseudonymous refs.

Both come from settings (``GUARD_TEMPLATE_KEY``, ``GUARD_HMAC_KEY``) or, for development, from
files under ``<data_dir>/keys/`` that ``guard init`` creates with mode 0600. A missing key is
:class:`~guard.errors.Unavailable`: nothing that needs it may proceed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from guard.config import Settings
from guard.errors import Unavailable

TEMPLATE_KEY_FILE = "template.key"
HMAC_KEY_FILE = "hmac.key"


class TemplateCipher:
    """Authenticated encryption (Fernet: AES-128-CBC + HMAC-SHA256) of face templates."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, ciphertext: bytes) -> bytes:
        try:
            return self._fernet.decrypt(ciphertext)
        except InvalidToken as exc:
            raise Unavailable(
                "a face template cannot be decrypted: GUARD_TEMPLATE_KEY is not the key it was "
                "stored with"
            ) from exc


class KeyedHasher:
    """HMAC-SHA256 references: stable per deployment, meaningless without the key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def ref(self, kind: str, value: str) -> str:
        message = f"{kind}:{value}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()


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


def _read_key(configured: SecretStr | None, path: Path, setting: str) -> bytes:
    if configured is not None:
        return configured.get_secret_value().encode()
    try:
        return path.read_bytes().strip()
    except OSError as exc:
        raise Unavailable(
            f"no {setting} is set and {path} cannot be read; run `guard init` or set {setting}"
        ) from exc


def template_cipher(settings: Settings) -> TemplateCipher:
    key = _read_key(
        settings.template_key, settings.keys_dir / TEMPLATE_KEY_FILE, "GUARD_TEMPLATE_KEY"
    )
    try:
        return TemplateCipher(key)
    except ValueError as exc:
        raise Unavailable(
            "GUARD_TEMPLATE_KEY is not a valid Fernet key (32 url-safe base64 bytes)"
        ) from exc


def keyed_hasher(settings: Settings) -> KeyedHasher:
    return KeyedHasher(
        _read_key(settings.hmac_key, settings.keys_dir / HMAC_KEY_FILE, "GUARD_HMAC_KEY")
    )
