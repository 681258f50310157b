"""Who signs C2PA manifests: a PEM key (a setting, a file, or ``GUARD_KEY_PROVIDER``), or a
signing callback into a KMS/HSM.

    >>> credentials = SigningKeys(settings).credentials()           # doctest: +SKIP
    >>> hsm = SigningCredentials.from_callback(kms_sign, chain_pem)  # doctest: +SKIP

A missing or unreadable key is :class:`~guard.errors.KeyMaterialError` (an
:class:`~guard.errors.Unavailable`): the pipeline then refuses to release the output (fail
closed) rather than release it unsigned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import c2pa
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from guard.config import Settings
from guard.errors import Unavailable
from guard.key_provider import C2PA_CERT_CHAIN, C2PA_PRIVATE_KEY, key_provider
from guard.keyfile import KeyFile, KeyProblem, KeySource
from guard.provenance.certificates import CHAIN_FILE, KEY_FILE

CHAIN_SETTING = "GUARD_C2PA_CERT_CHAIN_PEM"
KEY_SETTING = "GUARD_C2PA_PRIVATE_KEY_PEM"

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


class SigningKeys:
    """The chain and key the settings name, each from its ``_PEM`` setting, else the file
    a path setting names, else the key provider, else the development file; a file is re-read
    when it changes and a provider asked again when its answer expires (guard.keyfile)."""

    def __init__(self, settings: Settings) -> None:
        provider = key_provider(settings)
        missing = "run `guard secrets init` for development credentials, or set {} (a file) or {}"
        self._chain = KeyFile(
            KeySource(
                "C2PA certificate chain",
                settings.c2pa_cert_chain or settings.c2pa_keys_dir / CHAIN_FILE,
                CHAIN_SETTING,
                settings.c2pa_cert_chain_pem,
                missing_fix=missing.format("GUARD_C2PA_CERT_CHAIN", CHAIN_SETTING),
                fix="it must hold the signing certificate and its CA's, PEM, signer first",
                setting_fix="set it to the PEM chain, signer first",
                # A file the operator named is their choice; the provider stands in only for
                # a key with no setting at all.
                provider=None if settings.c2pa_cert_chain else provider,
                provider_name=C2PA_CERT_CHAIN,
            ),
            _chain,
        )
        self._key = KeyFile(
            KeySource(
                "C2PA signing key",
                settings.c2pa_private_key or settings.c2pa_keys_dir / KEY_FILE,
                KEY_SETTING,
                settings.c2pa_private_key_pem,
                missing_fix=missing.format("GUARD_C2PA_PRIVATE_KEY", KEY_SETTING),
                fix="it must be the unencrypted PEM EC P-256 key of the signing certificate",
                setting_fix="set it to the unencrypted PEM EC P-256 key",
                provider=None if settings.c2pa_private_key else provider,
                provider_name=C2PA_PRIVATE_KEY,
            ),
            _private_key,
        )
        self._tsa_url = settings.c2pa_tsa_url

    def credentials(self) -> SigningCredentials:
        """The credentials as their sources hold them now (:class:`KeyMaterialError`, an
        :class:`Unavailable`, naming the source if either is missing or unusable)."""
        chain, key = self._chain.current(), self._key.current()
        return SigningCredentials(chain_pem=chain, private_key_pem=key, tsa_url=self._tsa_url)

    def validate_if_present(self) -> None:
        """Start-up: raise on a chain or key that is set or present but unusable."""
        self._chain.validate_if_present()
        self._key.validate_if_present()


def signing_credentials(settings: Settings) -> SigningCredentials:
    """The credentials the settings name (default: the dev identity from ``guard secrets init``)."""
    return SigningKeys(settings).credentials()


def _chain(data: bytes, where: str) -> bytes:
    if not data.strip():
        raise KeyProblem("is 0 bytes; it needs a PEM certificate chain")
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        problem = f"is not a PEM certificate chain: {len(data)} bytes that do not parse"
        raise KeyProblem(problem) from None
    return data


def _private_key(data: bytes, where: str) -> bytes:
    if not data.strip():
        raise KeyProblem("is 0 bytes; it needs a PEM EC P-256 private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyProblem("is encrypted; the C2PA key must be an unencrypted PEM key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyProblem(f"is not a PEM private key: {len(data)} bytes that do not parse") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise KeyProblem(f"is not an EC P-256 key for ES256 (it is {type(key).__name__})")
    return data
