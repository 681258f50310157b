"""``guard secrets init``: a local development CA and an ES256 C2PA signing certificate.

The certificates carry exactly the extensions C2PA validators require of a claim signer
(``../shared/notes/c2pa.md``): the end-entity certificate is issued by a CA (never self-signed),
is ``CA:FALSE`` (critical), has ``digitalSignature`` key usage (critical), the
``emailProtection`` extended key usage, and subject and authority key identifiers.

They are for development only: **no public C2PA trust list contains this CA**, so readers report
the signature as valid but untrusted unless they are told to trust ``ca.pem``. Production sets
``GUARD_C2PA_CERT_CHAIN`` and ``GUARD_C2PA_PRIVATE_KEY`` (or passes a callback signer backed by a
KMS/HSM) instead.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEV_CA_NOTICE = (
    "These are development credentials: the CA is local to this machine and on no public "
    "C2PA trust list, so other readers will report signatures as valid but untrusted. "
    "Production: set GUARD_C2PA_CERT_CHAIN and GUARD_C2PA_PRIVATE_KEY (or use a KMS/HSM signer)."
)
CA_FILE = "ca.pem"
CHAIN_FILE = "signing-chain.pem"
KEY_FILE = "signing-key.pem"


@dataclass(frozen=True)
class DevSigningFiles:
    """Where ``create_dev_signing_identity`` put (or found) the development credentials."""

    directory: Path
    created: bool

    @property
    def ca(self) -> Path:
        return self.directory / CA_FILE

    @property
    def chain(self) -> Path:
        return self.directory / CHAIN_FILE

    @property
    def key(self) -> Path:
        return self.directory / KEY_FILE


def create_dev_signing_identity(
    directory: Path, *, organisation: str = "Likeness Guard (dev)"
) -> DevSigningFiles:
    """Create a CA and an ES256 signing certificate under ``directory`` unless they exist."""
    files = DevSigningFiles(directory, created=False)
    if files.chain.exists() and files.key.exists():
        return files
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Likeness Guard local development CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signing=False), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    signing_key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "Likeness Guard C2PA signer"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(signing_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signing=True), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(signing_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files.ca.write_bytes(ca.public_bytes(pem))
    files.chain.write_bytes(certificate.public_bytes(pem) + ca.public_bytes(pem))
    key_bytes = signing_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key_bytes)
    return DevSigningFiles(directory, created=True)


def _key_usage(*, signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signing,
        crl_sign=not signing,
        encipher_only=False,
        decipher_only=False,
    )
