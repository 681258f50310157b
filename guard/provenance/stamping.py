"""``Provenance``: watermark, sign and store an allowed output; verify an image later.

    >>> provenance = Provenance(settings, Database(settings.database_url))   # doctest: +SKIP
    >>> stamped = provenance.stamp(rgb, "jpeg", StampContext(decision, "relight",
    ...                            SoftwareAgent("classic", "0.1.0")))         # doctest: +SKIP
    >>> provenance.verify(stamped.data).outcome                                # doctest: +SKIP
    <VerificationOutcome.VALID: 'valid'>

Any failure to sign or store is :class:`~guard.errors.Unavailable`: the caller must then withhold
the output (the pipeline turns it into a ``deny`` with reason ``unavailable``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import c2pa

from guard.config import Settings
from guard.db import Database
from guard.errors import Unavailable
from guard.media import (
    DecodedImage,
    OutputFormat,
    RGBImage,
    content_hash,
    encode_image,
    manifest_mime_type,
    mime_type_of,
)
from guard.policy import Decision
from guard.provenance.fingerprint import fingerprint, information
from guard.provenance.label import add_visible_label
from guard.provenance.manifest import Ingredient, ManifestFacts, SoftwareAgent, sign_image
from guard.provenance.signing import SigningCredentials, SigningKeys
from guard.provenance.store import ManifestStore, StoredManifest
from guard.provenance.verify import VerificationReport, verify_image
from guard.provenance.watermark import TiledWatermarker, Watermarker, record_id_text
from guard.secrets import KeyedHasher


@dataclass(frozen=True)
class StampContext:
    """Why and by what an output was made: goes into its manifest."""

    decision: Decision
    operation: str
    software_agent: SoftwareAgent
    consent_grant_refs: tuple[str, ...] = ()
    parent: Ingredient | None = None
    title: str = "Likeness Guard output"
    audit_leaf_hash: str | None = None
    # The requester's tenant: only its keys (and the operator) may find this stamp again by
    # fingerprint. None (unknown) leaves it to the operator.
    tenant: str | None = None
    # What reproduces the edit (model hashes, seed, ...), from the editor.
    editor_record: Mapping[str, str | int | float | bool] = field(default_factory=dict)


@dataclass(frozen=True)
class StampedImage:
    """A released output: watermarked pixels in a file with a signed manifest.

    ``record_id`` is the watermark's record id as 12 hex digits, the form every interface
    prints (the audit log's ``release`` entry, the API, ``guard verify``)."""

    data: bytes
    mime_type: str
    record_id: str
    manifest_label: str
    fingerprint: str
    sha256: str


class Provenance:
    """Watermark -> C2PA sign -> manifest store, and the reverse for ``verify``."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        watermarker: Watermarker | None = None,
        credentials: SigningCredentials | None = None,
    ) -> None:
        self.settings = settings
        self.store = ManifestStore(db)
        self.watermarker: Watermarker = watermarker or TiledWatermarker(
            psnr_db=settings.watermark_psnr_db
        )
        self._credentials = credentials
        self._keys = SigningKeys(settings) if credentials is None else None

    def credentials(self) -> SigningCredentials:
        """The signing credentials given, else as the settings' sources hold them now (a
        changed file is read again, a provider's answer asked again when it expired;
        :class:`Unavailable` while they are missing or unusable)."""
        if self._keys is None:
            assert self._credentials is not None
            return self._credentials
        return self._keys.credentials()

    def stamp(
        self, rgb: RGBImage, output_format: OutputFormat, context: StampContext
    ) -> StampedImage:
        credentials = self.credentials()
        record_id = self.store.new_record_id()
        # Measured on the picture as it came, before our label and mark: both are the same
        # pattern on every output, so they must not make a flat picture look identifiable.
        detail = information(rgb)
        if "visible_label" in context.decision.conditions:
            rgb = add_visible_label(rgb)
        marked = self.watermarker.embed(rgb, record_id)
        mime_type = mime_type_of(output_format)
        facts = ManifestFacts(
            title=context.title,
            software_agent=context.software_agent,
            operation=context.operation,
            decision=context.decision,
            watermark_algorithm=self.watermarker.algorithm,
            record_id=record_id,
            consent_grant_refs=context.consent_grant_refs,
            parent=context.parent,
            audit_leaf_hash=context.audit_leaf_hash,
            editor_record=context.editor_record,
        )
        try:
            signed = sign_image(
                encode_image(marked, output_format),
                mime_type,
                facts,
                credentials,
                thumbnails=self.settings.c2pa_thumbnails,
            )
        except c2pa.C2paError as exc:
            raise Unavailable(f"C2PA signing failed: {exc}") from exc
        stamped = StampedImage(
            data=signed.data,
            mime_type=mime_type,
            record_id=record_id_text(record_id),
            manifest_label=signed.label,
            fingerprint=fingerprint(marked),
            sha256=content_hash(signed.data),
        )
        self.store.save(
            StoredManifest(
                record_id=record_id,
                manifest_label=signed.label,
                decision_id=context.decision.decision_id,
                output_sha256=stamped.sha256,
                mime_type=mime_type,
                fingerprint=stamped.fingerprint,
                store_json=signed.store_json,
                tenant=context.tenant,
                fingerprint_information=detail,
            )
        )
        return stamped

    def verify(
        self,
        data: bytes,
        decode: Callable[[bytes], DecodedImage],
        *,
        tenant: str | None = None,
    ) -> VerificationReport:
        """Verify ``data`` as ``tenant`` would: a fingerprint leads only to that tenant's stamps.
        ``None`` is the deployment's own view (every tenant's), for the operator, the CLI and
        the library; the HTTP service passes the calling key's tenant."""
        anchors = self.settings.c2pa_trust_anchors
        return verify_image(
            data,
            decode,
            store=self.store,
            watermarker=self.watermarker,
            tenant=tenant,
            trust_anchors=anchors.read_bytes() if anchors is not None else None,
            max_fingerprint_distance=self.settings.fingerprint_max_distance,
        )


def consent_grant_refs(decision: Decision, hasher: KeyedHasher, *, tenant: str) -> tuple[str, ...]:
    """Keyed hashes of the consent grants a decision relied on (never the grant ids themselves),
    made with ``tenant``'s key (derived from the deployment's ``hasher``, as in the audit log):
    the requester's tenant, whose subjects' grants these are. Another tenant's manifest cannot
    be joined with them."""
    grant_ids = {
        str(reason.evidence["grant_id"])
        for face in decision.faces
        for reason in face.reasons
        if reason.evidence.get("grant_id") is not None and not reason.denies
    }
    tenant_hasher = hasher.for_tenant(tenant)
    return tuple(sorted(tenant_hasher.ref("grant", grant_id) for grant_id in grant_ids))


def parent_ingredient(decoded: DecodedImage, data: bytes) -> Ingredient:
    """The input as a C2PA parent; formats C2PA cannot embed in are carried as PNG."""
    mime_type = manifest_mime_type(decoded.source_format)
    if mime_type is None:
        return Ingredient(encode_image(decoded.rgb, "png"), "image/png", "input (converted to PNG)")
    return Ingredient(data, mime_type)
