"""Provenance: the invisible watermark, signed C2PA manifests, the manifest store and ``verify``.

>>> from guard.provenance import Provenance, StampContext, SoftwareAgent
"""

from __future__ import annotations

from guard.provenance.certificates import (
    DEV_CA_NOTICE,
    DevSigningFiles,
    create_dev_signing_identity,
)
from guard.provenance.fingerprint import FINGERPRINT_ALGORITHM, fingerprint
from guard.provenance.manifest import (
    GUARD_ASSERTION,
    Ingredient,
    ManifestFacts,
    ManifestReading,
    SoftwareAgent,
    read_manifest,
    sign_image,
)
from guard.provenance.signing import (
    SignCallback,
    SigningCredentials,
    SigningKeys,
    signing_credentials,
)
from guard.provenance.stamping import (
    Provenance,
    StampContext,
    StampedImage,
    consent_grant_refs,
    parent_ingredient,
)
from guard.provenance.store import ManifestStore, StoredManifest
from guard.provenance.verify import VerificationOutcome, VerificationReport, verify_image
from guard.provenance.watermark import (
    FALSE_POSITIVE_BOUND,
    Detection,
    TiledWatermarker,
    Watermarker,
)

__all__ = [
    "DEV_CA_NOTICE",
    "FALSE_POSITIVE_BOUND",
    "FINGERPRINT_ALGORITHM",
    "GUARD_ASSERTION",
    "Detection",
    "DevSigningFiles",
    "Ingredient",
    "ManifestFacts",
    "ManifestReading",
    "ManifestStore",
    "Provenance",
    "SignCallback",
    "SigningCredentials",
    "SigningKeys",
    "SoftwareAgent",
    "StampContext",
    "StampedImage",
    "StoredManifest",
    "TiledWatermarker",
    "VerificationOutcome",
    "VerificationReport",
    "Watermarker",
    "consent_grant_refs",
    "create_dev_signing_identity",
    "fingerprint",
    "parent_ingredient",
    "read_manifest",
    "sign_image",
    "signing_credentials",
    "verify_image",
]
