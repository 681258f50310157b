"""``guard verify``: is this image one the guard made, untouched, and under which decision?

The order of evidence: the embedded C2PA manifest (signed, rich, but lost on the first re-save);
then the watermark, whose record id the manifest store resolves; then the perceptual fingerprint.
Every failure of a reader becomes part of the report, never a traceback.

The fingerprint is the weakest of the three (a match means "this picture or a sibling of it"),
so two rules bound it (issue 17): a picture with too little in it to identify (flat colours,
gradients, tiny images: ``fingerprint.MIN_INFORMATION``) is never recovered by fingerprint, and
a fingerprint search sees only the verifying tenant's stamps (the operator, the CLI and the
library see every tenant's): for a tenant, another tenant's stamp reads exactly as nobody's.
The watermark is not scoped: it is read from the picture itself, not guessed, and what it
recovers (the stored copy of the manifest the released file carried, with no tenant or
requester name in it and grant references keyed per tenant) tells the verifier nothing the
file did not already show.

=====================  ==========================================================  ====
outcome                meaning                                                     exit
=====================  ==========================================================  ====
``valid``              embedded manifest from this guard, signature and hashes ok   0
``recovered``          no usable manifest, but the watermark or fingerprint led to   0
                       the stored one
``tampered``           a manifest is there but its signature or a hash fails         1
``not_from_this_guard``  neither a guard manifest nor a mark nor a fingerprint match  1
``error``              the file could not be read as an image                       2
=====================  ==========================================================  ====
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Literal

from guard.errors import InvalidInput
from guard.media import DecodedImage, manifest_mime_type, sniff_mime_type
from guard.provenance.fingerprint import MIN_INFORMATION, Fingerprint, measure
from guard.provenance.manifest import GUARD_ASSERTION, ManifestReading, read_manifest
from guard.provenance.store import FingerprintMatch, ManifestStore, StoredManifest
from guard.provenance.watermark import Detection, Watermarker, record_id_text


class VerificationOutcome(StrEnum):
    VALID = "valid"
    RECOVERED = "recovered"
    TAMPERED = "tampered"
    NOT_FROM_THIS_GUARD = "not_from_this_guard"
    ERROR = "error"

    @property
    def exit_code(self) -> int:
        return {"valid": 0, "recovered": 0, "error": 2}.get(self.value, 1)


@dataclass(frozen=True)
class ManifestFinding:
    found: bool
    state: str | None = None
    trusted: bool = False
    label: str | None = None
    problems: tuple[str, ...] = ()
    from_this_guard: bool = False
    reader_error: str | None = None


@dataclass(frozen=True)
class WatermarkFinding:
    found: bool
    algorithm: str
    record_id: str | None = None
    confidence: float = 0.0
    bit_errors: int | None = None


@dataclass(frozen=True)
class RecoveredManifest:
    via: Literal["watermark", "fingerprint"]
    record_id: str
    manifest_label: str
    decision_id: str
    fingerprint_distance: int | None = None


@dataclass(frozen=True)
class VerificationReport:
    """The whole answer; ``to_dict()`` is what ``guard verify --json`` prints."""

    outcome: VerificationOutcome
    summary: str
    manifest: ManifestFinding
    watermark: WatermarkFinding | None
    recovered: RecoveredManifest | None
    decision: dict[str, Any] | None

    @property
    def exit_code(self) -> int:
        return self.outcome.exit_code

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        data["exit_code"] = self.exit_code
        return data


def verify_image(
    data: bytes,
    decode: Any,
    *,
    store: ManifestStore,
    watermarker: Watermarker,
    tenant: str | None,
    trust_anchors: bytes | None = None,
    max_fingerprint_distance: int = 8,
) -> VerificationReport:
    """Verify ``data``; ``decode`` is the guard's safe decoder (bytes -> DecodedImage).

    ``tenant``: whose stamps a fingerprint may lead to (``None``: every tenant's, which only the
    operator and the deployment itself may ask for)."""
    try:
        decoded: DecodedImage = decode(data)
    except InvalidInput as exc:
        # Pixels that no longer decode may still sit under a readable manifest whose data hash
        # says exactly that: tampering, not just a bad file.
        reading = _read(data, sniff_mime_type(data), trust_anchors)
        manifest = _manifest_finding(reading)
        if manifest.found and manifest.problems:
            return VerificationReport(
                VerificationOutcome.TAMPERED, _tampered(manifest), manifest, None, None, None
            )
        return VerificationReport(
            VerificationOutcome.ERROR,
            f"the file is not a readable image: {exc.message}",
            manifest,
            None,
            None,
            None,
        )
    mime_type = sniff_mime_type(data) or manifest_mime_type(decoded.source_format)
    reading = _read(data, mime_type, trust_anchors)
    manifest = _manifest_finding(reading)
    detection = watermarker.detect(decoded.rgb)
    watermark = _watermark_finding(detection)
    query = measure(decoded.rgb)
    recovered_row, recovered = _recover(
        query, detection, store, tenant=tenant, max_distance=max_fingerprint_distance
    )
    if manifest.found and manifest.problems and manifest.state == "Invalid":
        outcome, summary = VerificationOutcome.TAMPERED, _tampered(manifest)
    elif manifest.from_this_guard:
        trust = "trusted" if manifest.trusted else "valid signature, signer not on your trust list"
        outcome, summary = VerificationOutcome.VALID, f"signed by this guard ({trust})"
    elif recovered is not None:
        outcome, summary = (
            VerificationOutcome.RECOVERED,
            f"no usable embedded manifest; the {recovered.via} led to stored manifest "
            f"{recovered.manifest_label}",
        )
    else:
        outcome, summary = VerificationOutcome.NOT_FROM_THIS_GUARD, _not_found(query)
    decision = (
        reading.guard_assertion
        if outcome is VerificationOutcome.VALID
        else _stored_assertion(recovered_row)
    )
    return VerificationReport(outcome, summary, manifest, watermark, recovered, decision)


def _tampered(manifest: ManifestFinding) -> str:
    return "the embedded manifest does not match the file: " + ", ".join(manifest.problems)


def _read(data: bytes, mime_type: str | None, trust_anchors: bytes | None) -> ManifestReading:
    if mime_type is None:
        return ManifestReading(found=False, error="no C2PA reader for this file type")
    return read_manifest(data, mime_type, trust_anchors=trust_anchors)


def _manifest_finding(reading: ManifestReading) -> ManifestFinding:
    return ManifestFinding(
        found=reading.found,
        state=reading.state,
        trusted=reading.trusted,
        label=reading.label,
        problems=tuple(issue.code for issue in reading.problems),
        from_this_guard=reading.valid and reading.guard_assertion is not None,
        reader_error=reading.error,
    )


def _watermark_finding(detection: Detection) -> WatermarkFinding:
    return WatermarkFinding(
        found=detection.found,
        algorithm=detection.algorithm,
        record_id=record_id_text(detection.record_id) if detection.record_id is not None else None,
        confidence=round(detection.confidence, 3),
        bit_errors=detection.bit_errors,
    )


def fingerprint_match(
    query: Fingerprint, store: ManifestStore, *, tenant: str | None, max_distance: int
) -> FingerprintMatch | None:
    """The nearest of ``tenant``'s stamps (every tenant's when ``None``) whose fingerprint is
    within ``max_distance`` bits of ``query`` (``measure(rgb)`` of the picture verified);
    ``None`` as well when the picture has too little in it for a fingerprint to identify."""
    if not query.identifying:
        return None
    matches = store.nearest_by_fingerprint(
        query.value, max_distance, tenant=tenant, min_information=MIN_INFORMATION
    )
    return matches[0] if matches else None


def _recover(
    query: Fingerprint,
    detection: Detection,
    store: ManifestStore,
    *,
    tenant: str | None,
    max_distance: int,
) -> tuple[StoredManifest | None, RecoveredManifest | None]:
    if detection.found and detection.record_id is not None:
        stored = store.by_record_id(detection.record_id)
        if stored is not None:
            return stored, _recovered(stored, "watermark", None)
    match = fingerprint_match(query, store, tenant=tenant, max_distance=max_distance)
    if match is not None:
        return match.manifest, _recovered(match.manifest, "fingerprint", match.distance)
    return None, None


def _not_found(query: Fingerprint) -> str:
    """Why nothing was found. It depends on the picture alone, never on what is stored, so it
    cannot tell a tenant whether someone else stamped this picture."""
    if query.identifying:
        return "no manifest, watermark or fingerprint of this guard was found"
    return (
        "no manifest or watermark of this guard was found, and the picture has too little "
        f"detail for a fingerprint to identify it ({query.information} of the "
        f"{MIN_INFORMATION} decisive fingerprint coefficients needed)"
    )


def _recovered(
    stored: StoredManifest, via: Literal["watermark", "fingerprint"], distance: int | None
) -> RecoveredManifest:
    return RecoveredManifest(
        via=via,
        record_id=record_id_text(stored.record_id),
        manifest_label=stored.manifest_label,
        decision_id=stored.decision_id,
        fingerprint_distance=distance,
    )


def active_assertions(store_json: str) -> list[dict[str, Any]]:
    """The assertions of a C2PA manifest store's active manifest (its JSON, as read or as
    the manifest store keeps it)."""
    store = json.loads(store_json)
    active = store.get("manifests", {}).get(store.get("active_manifest"), {})
    assertions: list[dict[str, Any]] = active.get("assertions", [])
    return assertions


def _stored_assertion(stored: StoredManifest | None) -> dict[str, Any] | None:
    if stored is None:
        return None
    for assertion in active_assertions(stored.store_json):
        if assertion.get("label") == GUARD_ASSERTION:
            data: dict[str, Any] = assertion.get("data", {})
            return data
    return None
