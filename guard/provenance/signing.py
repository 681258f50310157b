"""Who signs C2PA manifests: a PEM key on disk, or a callback into a KMS/HSM.

    >>> credentials = signing_credentials(settings)                 # doctest: +SKIP
    >>> hsm = SigningCredentials.from_callback(kms_sign, chain_pem)  # doctest: +SKIP

A missing or unreadable key is :class:`~guard.errors.Unavailable`: the pipeline then refuses to
release the output (fail closed) rather than release it unsigned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import c2pa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from guard.config import Settings
from guard.errors import Unavailable
from guard.provenance.certificates import CHAIN_FILE, KEY_FILE

SignCallback = Callable[[bytes], bytes]
"""Takes the bytes to sign, returns an ES256 signature (DER or raw r||s) over their SHA-256."""


@dataclass(frozen=True)
class SigningCredentials:
    """An ES256 certificate chain (end-entity first) and the means to sign with its key."""

    chain_pem: bytes
    private_key_pem: bytes | None = None
    callback: SignCallback | None = None
    tsa_url: str | None = None

    @classmethod
    def from_pem(
        cls, chain_pem: bytes, private_key_pem: bytes, tsa_url: str | None = None
    ) -> SigningCredentials:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise Unavailable("the C2PA signing key must be an EC P-256 key (ES256)")
        return cls(chain_pem=chain_pem, private_key_pem=private_key_pem, tsa_url=tsa_url)

    @classmethod
    def from_callback(
        cls, callback: SignCallback, chain_pem: bytes, tsa_url: str | None = None
    ) -> SigningCredentials:
        return cls(chain_pem=chain_pem, callback=callback, tsa_url=tsa_url)

    def c2pa_signer(self) -> c2pa.Signer:
        """A fresh c2pa-python signer (a Builder consumes one per signature)."""
        alg = c2pa.C2paSigningAlg.ES256
        if self.callback is not None:
            return c2pa.Signer.from_callback(
                self.callback, alg, self.chain_pem.decode(), self.tsa_url
            )
        assert self.private_key_pem is not None
        info = c2pa.C2paSignerInfo(alg, self.chain_pem, self.private_key_pem, self.tsa_url)
        return c2pa.Signer.from_info(info)


def signing_credentials(settings: Settings) -> SigningCredentials:
    """The credentials the settings name (default: the dev identity from ``guard secrets init``)."""
    chain_path = settings.c2pa_cert_chain or settings.c2pa_keys_dir / CHAIN_FILE
    key_path = settings.c2pa_private_key or settings.c2pa_keys_dir / KEY_FILE
    chain, key = (
        _read(chain_path, "GUARD_C2PA_CERT_CHAIN"),
        _read(key_path, "GUARD_C2PA_PRIVATE_KEY"),
    )
    try:
        return SigningCredentials.from_pem(chain, key, settings.c2pa_tsa_url)
    except ValueError as exc:
        raise Unavailable(f"the C2PA signing key {key_path} cannot be loaded: {exc}") from exc


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise Unavailable(
            f"no C2PA signing credentials at {path}: run `guard secrets init` for development "
            f"credentials or set {setting}"
        ) from exc
