"""Signed tree heads as C2SP checkpoints in the signed-note format, signed with Ed25519.

A checkpoint body (https://c2sp.org/tlog-checkpoint) is the log's origin line, the tree size in
decimal, the root hash in base64, and here one extension line with the UTC time; the signed note
(https://c2sp.org/signed-note) appends an empty line and a signature line
``— <key name> <base64(key id || signature)>``, where the key id is the first four bytes of
SHA-256(name || "\\n" || 0x01 || public key). Any C2SP note verifier (Go's
golang.org/x/mod/sumdb/note, Tessera's tooling) can check it with the verifier key string
:func:`verifier_key` prints.

The origin line must identify the log (tlog-checkpoint: "a unique identifier for the log
identity"): a witness keeps one state per origin, so two deployments signing under one origin
would look like one log forking. It is derived from the signing key,
``likeness-guard/<first 16 hex digits of SHA-256(raw public key)>`` (:func:`log_origin`).
Checkpoints signed before that under the shared :data:`LEGACY_ORIGIN` still verify with their
key; nothing else does.

    >>> note = signer.sign(Checkpoint(signer.origin, 3, root, now))           # doctest: +SKIP
    >>> CheckpointVerifier.from_key_string(vkey).verify(note).size              # doctest: +SKIP
    3
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from guard.errors import InvalidInput
from guard.key_provider import AUDIT_SIGNING, KeyProvider, key_provider
from guard.keyfile import KeyFile, KeyProblem, KeySource

if TYPE_CHECKING:
    from pydantic import SecretStr

    from guard.config import Settings

# The origin every deployment used before it was derived from the key; still accepted from this
# key's signatures so logs that began under it keep verifying (docs/audit.md).
LEGACY_ORIGIN = "likeness-guard/audit/v1"
ORIGIN = LEGACY_ORIGIN  # the old name, kept for importers; a log signs with log_origin(key)
ORIGIN_PREFIX = "likeness-guard/"
AUDIT_KEY_NAME = "likeness-guard-audit"
_ED25519 = b"\x01"
_DASH = "\u2014"
PRIVATE_KEY_FILE = "checkpoint-key.pem"
PUBLIC_KEY_FILE = "checkpoint.vkey"
AUDIT_KEY_SETTING = "GUARD_AUDIT_SIGNING_KEY"


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's size and root hash at a moment."""

    origin: str
    size: int
    root: bytes
    time: datetime

    def body(self) -> str:
        stamp = self.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        root = base64.b64encode(self.root).decode()
        return f"{self.origin}\n{self.size}\n{root}\ntime {stamp}\n"

    @classmethod
    def parse_body(cls, body: str) -> Checkpoint:
        lines = body.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise InvalidInput("a checkpoint body is origin, size and root, one per line")
        origin, size, root, *extensions = lines[:-1]
        times = [line[5:] for line in extensions if line.startswith("time ")]
        try:
            parsed_size = int(size)
            parsed_root = base64.b64decode(root, validate=True)
            when = datetime.strptime(times[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        except (ValueError, IndexError) as exc:
            raise InvalidInput(f"malformed checkpoint: {exc}") from exc
        if parsed_size < 0 or len(parsed_root) != 32 or str(parsed_size) != size:
            raise InvalidInput("malformed checkpoint: bad size or root")
        return cls(origin, parsed_size, parsed_root, when)


def _key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + public).digest()[:4]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def log_origin(key: Ed25519PublicKey) -> str:
    """The origin line of the log that ``key`` signs for: unique per deployment because each
    deployment makes its own key, stable as long as the key is (schema-less, no spaces or "+",
    as tlog-checkpoint recommends)."""
    return ORIGIN_PREFIX + hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def verifier_key(name: str, key: Ed25519PublicKey) -> str:
    """The C2SP verifier key string ``<name>+<key id hex>+<base64(0x01 || public key)>``."""
    public = _raw_public(key)
    encoded = base64.b64encode(_ED25519 + public).decode()
    return f"{name}+{_key_id(name, public).hex()}+{encoded}"


class CheckpointSigner:
    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        self.name = name
        self._key = key
        self._key_id = _key_id(name, _raw_public(key.public_key()))

    @property
    def verifier_key(self) -> str:
        return verifier_key(self.name, self._key.public_key())

    @property
    def origin(self) -> str:
        """The origin line this key's checkpoints carry."""
        return log_origin(self._key.public_key())

    def sign(self, checkpoint: Checkpoint) -> str:
        body = checkpoint.body()
        signature = self._key.sign(body.encode())
        encoded = base64.b64encode(self._key_id + signature).decode()
        return f"{body}\n{_DASH} {self.name} {encoded}\n"


@dataclass(frozen=True)
class CheckpointVerifier:
    name: str
    key: Ed25519PublicKey

    @classmethod
    def from_key_string(cls, vkey: str) -> CheckpointVerifier:
        try:
            name, key_id, encoded = vkey.strip().split("+", 2)
            raw = base64.b64decode(encoded, validate=True)
        except ValueError as exc:
            raise InvalidInput(f"not a C2SP verifier key (name+id+key): {exc}") from exc
        if raw[:1] != _ED25519 or len(raw) != 33 or _key_id(name, raw[1:]).hex() != key_id:
            raise InvalidInput("not an Ed25519 verifier key, or its key id does not match")
        return cls(name, Ed25519PublicKey.from_public_bytes(raw[1:]))

    @property
    def origin(self) -> str:
        """The origin line of the log this key signs for."""
        return log_origin(self.key)

    @property
    def origins(self) -> tuple[str, str]:
        """The origins accepted under this key: its own, and the legacy shared one."""
        return (self.origin, LEGACY_ORIGIN)

    def verify(self, note: str) -> Checkpoint:
        """The checkpoint ``note`` carries, if one of its signatures is this key's and it names
        this key's log (:attr:`origins`); else raise :class:`InvalidInput`."""
        body, separator, signatures = note.partition("\n\n")
        if not separator:
            raise InvalidInput("a signed note needs an empty line before its signatures")
        body += "\n"
        key_id = _key_id(self.name, _raw_public(self.key))
        for line in signatures.splitlines():
            parts = line.split(" ")
            if len(parts) != 3 or parts[0] != _DASH or parts[1] != self.name:
                continue
            try:
                blob = base64.b64decode(parts[2], validate=True)
            except ValueError:
                continue
            if blob[:4] != key_id:
                continue
            try:
                self.key.verify(blob[4:], body.encode())
            except InvalidSignature as exc:
                raise InvalidInput(f"the checkpoint signature of {self.name} is invalid") from exc
            checkpoint = Checkpoint.parse_body(body)
            if checkpoint.origin not in self.origins:
                raise InvalidInput(
                    f"the checkpoint names the log {checkpoint.origin!r}, not this key's "
                    f"{self.origin!r}"
                )
            return checkpoint
        raise InvalidInput(f"the checkpoint carries no signature by {self.name}")


def create_checkpoint_key(directory: Path, name: str) -> bool:
    """Create the log's Ed25519 key pair under ``directory`` unless it exists; True if created."""
    private_path = directory / PRIVATE_KEY_FILE
    if private_path.exists():
        return False
    directory.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    (directory / PUBLIC_KEY_FILE).write_text(verifier_key(name, key.public_key()) + "\n")
    return True


def parse_checkpoint_key(data: bytes, where: str, name: str = AUDIT_KEY_NAME) -> CheckpointSigner:
    """The signer for the PEM (PKCS#8) Ed25519 private key ``data``; :class:`KeyProblem` saying
    what is wrong (never the key's bytes) if it is empty, not PEM, encrypted or not Ed25519."""
    if not data.strip():
        raise KeyProblem("is 0 bytes; it needs a PEM Ed25519 private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyProblem("is encrypted; the audit key must be an unencrypted PEM key") from None
    except (ValueError, UnsupportedAlgorithm):
        problem = f"is not a PEM private key: {len(data)} bytes that do not parse"
        raise KeyProblem(problem) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyProblem(f"is not an Ed25519 key (it is {type(key).__name__})")
    return CheckpointSigner(name, key)


def checkpoint_key_file(
    path: Path,
    name: str = AUDIT_KEY_NAME,
    *,
    configured: SecretStr | None = None,
    provider: KeyProvider | None = None,
) -> KeyFile[CheckpointSigner]:
    """The log's signing key: ``configured`` (``GUARD_AUDIT_SIGNING_KEY``) when given, else
    asked of ``provider``, else the file at ``path``, re-read when it changes (guard.keyfile)."""
    return KeyFile(
        KeySource(
            "audit checkpoint key",
            path,
            AUDIT_KEY_SETTING,
            configured,
            missing_fix=f"run `guard secrets init` or set {AUDIT_KEY_SETTING}",
            fix=(
                "put back the log's key; `guard secrets init` makes a new one only where none "
                "exists, with a new checkpoint.vkey"
            ),
            setting_fix="set it to the log's PEM (PKCS#8) Ed25519 private key",
            provider=provider,
            provider_name=AUDIT_SIGNING,
        ),
        lambda data, where: parse_checkpoint_key(data, where, name),
    )


def audit_key_file(settings: Settings) -> KeyFile[CheckpointSigner]:
    """The checkpoint key of the guard ``settings`` describe (setting, provider or file)."""
    return checkpoint_key_file(
        settings.audit_keys_dir / PRIVATE_KEY_FILE,
        configured=settings.audit_signing_key,
        provider=key_provider(settings),
    )


def load_checkpoint_signer(path: Path, name: str) -> CheckpointSigner:
    """The signer for the key file at ``path``, read and checked now
    (:class:`~guard.errors.KeyMaterialError` naming the file if it is missing or unusable)."""
    return checkpoint_key_file(path, name).current()
