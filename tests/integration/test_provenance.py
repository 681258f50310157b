"""Provenance end to end on real photos: sign, read, tamper, strip, recover, fail closed.

Runs on SQLite and PostgreSQL (the manifest store lives in the guard's database).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from guard import CheckRequest, EditRequest, Guard, Result, StampRequest
from guard.media import OutputFormat, decode_image, encode_image
from guard.policy import Verdict
from guard.provenance import (
    GUARD_ASSERTION,
    Provenance,
    SigningCredentials,
    VerificationOutcome,
    fingerprint,
    read_manifest,
)
from guard.provenance.certificates import CA_FILE, CHAIN_FILE, KEY_FILE
from guard.provenance.manifest import EDITED_SOURCE_TYPE, GENERATED_SOURCE_TYPE
from guard.samples import half, natural_photos, sample_bytes
from tests.support.guards import GuardFactory
from tests.support.photos import PORTRAIT, crop
from tests.support.registry import REQUESTER, blocklist_public_figures, enroll_model

MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
# Where each format keeps its pixels: flipping a byte there must break the data hash.
PIXEL_MARKERS = {"png": b"IDAT", "jpeg": b"\xff\xda", "webp": b"VP8"}


@pytest.fixture
def enrolled(make_guard: GuardFactory) -> tuple[Guard, str, str]:
    g = make_guard()
    blocklist_public_figures(g)
    subject_id, grant_id = enroll_model(g)
    return g, subject_id, grant_id


@pytest.fixture
def guard(enrolled: tuple[Guard, str, str]) -> Guard:
    return enrolled[0]


def edit(guard: Guard, output_format: OutputFormat = "png", image: bytes | None = None) -> Result:
    result = guard.edit(
        EditRequest(
            image=image if image is not None else crop("t1", PORTRAIT),
            operation="background_blur",
            requester=REQUESTER,
            output_format=output_format,
        )
    )
    assert result.image is not None and result.provenance is not None, result.decision
    return result


def active_manifest(store_json: str) -> dict[str, Any]:
    store = json.loads(store_json)
    manifest: dict[str, Any] = store["manifests"][store["active_manifest"]]
    return manifest


def assertion(manifest: dict[str, Any], label: str) -> dict[str, Any]:
    [data] = [a["data"] for a in manifest["assertions"] if a["label"] == label]
    return dict(data)


@pytest.mark.parametrize("output_format", ["jpeg", "png", "webp"])
def test_signed_outputs_read_back_valid_with_the_assertions_written(
    enrolled: tuple[Guard, str, str], output_format: OutputFormat
) -> None:
    guard, subject_id, grant_id = enrolled
    result = edit(guard, output_format)
    assert result.image is not None and result.provenance is not None
    reading = read_manifest(result.image, MIME[output_format])
    assert reading.found and reading.valid and not reading.tampered, reading.failures
    assert reading.problems == ()
    assert reading.label == result.provenance.manifest_label
    manifest = active_manifest(reading.store_json or "")

    actions = assertion(manifest, "c2pa.actions.v2")["actions"]
    assert [a["action"] for a in actions] == ["c2pa.opened", "c2pa.edited"]
    assert actions[1]["digitalSourceType"] == EDITED_SOURCE_TYPE
    assert actions[1]["softwareAgent"] == {"name": "classic", "version": guard.editor.version}
    [parent] = manifest["ingredients"]
    assert parent["relationship"] == "parentOf" and parent["format"] == "image/jpeg"

    binding = assertion(manifest, "c2pa.soft-binding")
    assert binding["alg"] == guard.provenance.watermarker.algorithm

    decision = reading.guard_assertion
    assert decision is not None
    assert decision["decision_id"] == result.decision.decision_id
    assert decision["verdict"] == result.decision.verdict.value
    assert decision["reason_codes"] == list(result.decision.reason_codes)
    assert decision["policy"] == {"id": "default", "version": result.decision.policy_version}
    assert decision["watermark_record_id"] == result.provenance.record_id
    [grant_ref] = decision["consent_grant_refs"]
    assert len(grant_ref) >= 32

    # Nothing biometric, no names, no raw grant or subject ids in what leaves the guard.
    text = reading.store_json or ""
    for forbidden in ("embedding", "Model A", grant_id, subject_id):
        assert forbidden not in text


def test_verify_reports_valid_output_with_its_decision(guard: Guard) -> None:
    result = edit(guard)
    assert result.image is not None
    report = guard.verify(result.image)
    assert report.outcome is VerificationOutcome.VALID and report.exit_code == 0
    assert report.manifest.found and not report.manifest.trusted
    assert report.watermark is not None and report.watermark.found
    assert report.decision is not None
    assert report.decision["decision_id"] == result.decision.decision_id


def test_trust_anchors_make_the_signer_trusted(make_guard: GuardFactory, tmp_path: Path) -> None:
    guard = make_guard()
    enroll_model(guard)
    result = edit(guard)
    assert result.image is not None
    anchors = guard.settings.c2pa_keys_dir / CA_FILE
    trusting = make_guard(c2pa_trust_anchors=anchors)
    report = trusting.verify(result.image)
    assert report.outcome is VerificationOutcome.VALID and report.manifest.trusted


@pytest.mark.parametrize("output_format", ["jpeg", "png", "webp"])
def test_one_flipped_pixel_byte_is_tampering(guard: Guard, output_format: OutputFormat) -> None:
    result = edit(guard, output_format)
    assert result.image is not None
    data = bytearray(result.image)
    position = data.rindex(PIXEL_MARKERS[output_format]) + 64
    data[position] ^= 0x01
    report = guard.verify(bytes(data))
    assert report.outcome is VerificationOutcome.TAMPERED and report.exit_code == 1
    assert "assertion.dataHash.mismatch" in report.manifest.problems


def test_an_edited_guard_assertion_is_tampering(guard: Guard) -> None:
    result = edit(guard)
    assert result.image is not None
    data = result.image
    forged = data.replace(b"consent_granted", b"consent_grantee", 1)
    assert forged != data
    report = guard.verify(forged)
    assert report.outcome is VerificationOutcome.TAMPERED
    assert any("hashedURI" in problem for problem in report.manifest.problems)


def test_stripped_metadata_is_recovered_through_the_watermark(guard: Guard) -> None:
    result = edit(guard)
    assert result.image is not None and result.provenance is not None
    stripped = encode_image(decode_image(result.image).rgb, "png")
    assert not read_manifest(stripped, "image/png").found
    report = guard.verify(stripped)
    assert report.outcome is VerificationOutcome.RECOVERED and report.exit_code == 0
    assert report.recovered is not None and report.recovered.via == "watermark"
    assert report.recovered.manifest_label == result.provenance.manifest_label
    assert report.decision is not None
    assert report.decision["decision_id"] == result.decision.decision_id


def test_jpeg75_half_size_copy_is_recovered(guard: Guard) -> None:
    result = edit(guard)
    assert result.image is not None and result.provenance is not None
    reposted = encode_image(half(decode_image(result.image).rgb), "jpeg", quality=75)
    report = guard.verify(reposted)
    assert report.outcome is VerificationOutcome.RECOVERED
    assert report.recovered is not None and report.recovered.via in ("watermark", "fingerprint")
    assert report.recovered.manifest_label == result.provenance.manifest_label


def test_fingerprint_recovers_when_there_is_no_watermark(guard: Guard) -> None:
    # The watermark outlives even a 48-pixel thumbnail blown back up, so the fingerprint path is
    # exercised with a stored manifest whose picture never carried a mark.
    result = edit(guard)
    assert result.provenance is not None
    stored = guard.provenance.store.by_record_id(int(result.provenance.record_id, 16))
    assert stored is not None
    photo = natural_photos()["chelsea"]
    unmarked = replace(stored, record_id=stored.record_id ^ 1, fingerprint=fingerprint(photo))
    guard.provenance.store.save(unmarked)
    report = guard.verify(encode_image(half(photo), "jpeg", quality=70))
    assert report.watermark is not None and not report.watermark.found
    assert report.outcome is VerificationOutcome.RECOVERED
    assert report.recovered is not None and report.recovered.via == "fingerprint"
    assert report.recovered.record_id == f"{unmarked.record_id:012x}"
    assert report.recovered.fingerprint_distance is not None
    assert report.recovered.fingerprint_distance <= guard.settings.fingerprint_max_distance


def test_unmarked_photo_is_not_from_this_guard(guard: Guard) -> None:
    edit(guard)
    report = guard.verify(encode_image(natural_photos()["rocket"], "jpeg"))
    assert report.outcome is VerificationOutcome.NOT_FROM_THIS_GUARD and report.exit_code == 1
    assert report.recovered is None and report.decision is None


@pytest.mark.parametrize(
    "data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40], ids=str
)
def test_unreadable_files_are_errors_not_tracebacks(guard: Guard, data: bytes) -> None:
    report = guard.verify(data)
    assert report.outcome is VerificationOutcome.ERROR and report.exit_code == 2


def test_a_truncated_signed_file_is_an_error_result(guard: Guard) -> None:
    result = edit(guard)
    assert result.image is not None
    report = guard.verify(result.image[: len(result.image) // 2])
    assert report.outcome in (VerificationOutcome.ERROR, VerificationOutcome.TAMPERED)
    assert report.exit_code in (1, 2)


def test_missing_signing_key_withholds_the_output(guard: Guard) -> None:
    (guard.settings.c2pa_keys_dir / KEY_FILE).unlink()
    fresh = Guard(guard.settings, face_engine=guard.face_engine)
    result = fresh.edit(
        EditRequest(image=crop("t1", PORTRAIT), operation="background_blur", requester=REQUESTER)
    )
    assert result.decision.verdict is Verdict.DENY
    assert result.decision.reason_codes == ("unavailable",)
    assert "guard secrets init" in result.decision.reasons[0].message
    assert result.image is None and result.provenance is None


def test_a_broken_signing_key_withholds_the_output(guard: Guard) -> None:
    (guard.settings.c2pa_keys_dir / KEY_FILE).write_bytes(b"-----BEGIN PRIVATE KEY-----\nxx\n")
    fresh = Guard(guard.settings, face_engine=guard.face_engine)
    result = fresh.edit(
        EditRequest(image=crop("t1", PORTRAIT), operation="background_blur", requester=REQUESTER)
    )
    assert result.decision.reason_codes == ("unavailable",) and result.image is None


def test_a_callback_signer_signs_like_a_kms_would(guard: Guard) -> None:
    keys = guard.settings.c2pa_keys_dir
    private_key = serialization.load_pem_private_key((keys / KEY_FILE).read_bytes(), None)
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    calls: list[int] = []

    def kms_sign(data: bytes) -> bytes:
        calls.append(len(data))
        return private_key.sign(data, ec.ECDSA(hashes.SHA256()))

    credentials = SigningCredentials.from_callback(kms_sign, (keys / CHAIN_FILE).read_bytes())
    provenance = Provenance(guard.settings, guard.db, credentials=credentials)
    kms_guard = Guard(guard.settings, face_engine=guard.face_engine, provenance=provenance)
    result = edit(kms_guard)
    assert calls and result.image is not None
    assert kms_guard.verify(result.image).outcome is VerificationOutcome.VALID


def test_an_input_with_its_own_manifest_keeps_it_as_the_parent(guard: Guard) -> None:
    first = edit(guard, "jpeg")
    assert first.image is not None
    second = edit(guard, "png", image=first.image)
    assert second.image is not None
    reading = read_manifest(second.image, "image/png")
    assert reading.valid
    store = json.loads(reading.store_json or "{}")
    assert len(store["manifests"]) == 2
    [parent] = active_manifest(reading.store_json or "")["ingredients"]
    assert parent["active_manifest"] == first.provenance.manifest_label  # type: ignore[union-attr]


def test_stamp_signs_an_image_made_elsewhere(guard: Guard) -> None:
    landscape = encode_image(natural_photos()["coffee"], "jpeg")
    result = guard.stamp(
        StampRequest(
            image=landscape, requester=REQUESTER, generator="acme-gen", generator_version="2"
        )
    )
    assert result.decision.allowed and result.image is not None
    reading = read_manifest(result.image, "image/jpeg")
    assert reading.valid
    manifest = active_manifest(reading.store_json or "")
    [action] = assertion(manifest, "c2pa.actions.v2")["actions"]
    assert action["action"] == "c2pa.created"
    assert action["digitalSourceType"] == GENERATED_SOURCE_TYPE
    assert action["softwareAgent"] == {"name": "acme-gen", "version": "2"}
    assert assertion(manifest, GUARD_ASSERTION)["operation"] == "generate"
    assert guard.verify(result.image).outcome is VerificationOutcome.VALID


def test_stamp_with_a_source_records_it_as_parent(guard: Guard) -> None:
    source = encode_image(natural_photos()["coffee"], "png")
    made = encode_image(natural_photos()["coffee"][::-1].copy(), "png")
    result = guard.stamp(
        StampRequest(image=made, requester=REQUESTER, generator="acme-gen", source_image=source)
    )
    assert result.image is not None
    manifest = active_manifest(read_manifest(result.image, "image/png").store_json or "")
    actions = assertion(manifest, "c2pa.actions.v2")["actions"]
    assert [a["action"] for a in actions] == ["c2pa.opened", "c2pa.edited"]


def test_stamp_refuses_a_public_figure(guard: Guard) -> None:
    result = guard.stamp(
        StampRequest(image=sample_bytes("astronaut"), requester=REQUESTER, generator="acme-gen")
    )
    assert result.decision.verdict is Verdict.DENY
    assert "output_public_figure" in result.decision.reason_codes
    assert result.image is None and result.provenance is None


INTEROP = Path(__file__).resolve().parents[1] / "interop"


def independent_reader(path: Path) -> dict[str, Any]:
    """c2pa-ts's view of ``path`` (``make test`` installs it; CI must have it)."""
    node = shutil.which("node")
    if node is None or not (INTEROP / "node_modules" / "@trustnxt").is_dir():
        message = "node and tests/interop/node_modules (npm ci --prefix tests/interop) are needed"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the interoperability test")
        pytest.skip(f"!!! SKIPPED: {message}")
    completed = subprocess.run(
        [node, str(INTEROP / "read.mjs"), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


@pytest.mark.parametrize("output_format", ["jpeg", "png"])
def test_an_independent_reader_agrees(
    guard: Guard, output_format: OutputFormat, tmp_path: Path
) -> None:
    result = edit(guard, output_format)
    assert result.image is not None and result.provenance is not None
    signed = tmp_path / f"signed.{output_format}"
    signed.write_bytes(result.image)
    theirs = independent_reader(signed)
    assert theirs["found"] and theirs["valid"]
    assert theirs["label"] == result.provenance.manifest_label
    assert {"c2pa.actions.v2", "c2pa.soft-binding", GUARD_ASSERTION} <= set(theirs["assertions"])
    assert "assertion.dataHash.match" in theirs["codes"]

    data = bytearray(result.image)
    data[data.rindex(PIXEL_MARKERS[output_format]) + 64] ^= 0x01
    tampered = tmp_path / f"tampered.{output_format}"
    tampered.write_bytes(bytes(data))
    theirs = independent_reader(tampered)
    ours = guard.verify(bytes(data))
    assert not theirs["valid"] and ours.outcome is VerificationOutcome.TAMPERED
    assert "assertion.dataHash.mismatch" in theirs["codes"]
    assert "assertion.dataHash.mismatch" in ours.manifest.problems


def test_every_decision_is_audited_and_its_receipts_verify_offline(
    enrolled: tuple[Guard, str, str],
) -> None:
    from guard.audit import audit_verifier, canonical_json, verify_receipt

    guard, subject_id, grant_id = enrolled
    result = edit(guard)
    assert result.image is not None and result.provenance is not None
    verifier = audit_verifier(guard.settings)
    input_receipt, output_receipt, release_receipt = result.receipts
    assert input_receipt.leaf_index + 1 == output_receipt.leaf_index
    for receipt in result.receipts:
        assert verify_receipt(receipt, verifier)
    decided = guard.audit.entry(output_receipt.leaf_index)
    assert verify_receipt(output_receipt, verifier, canonical_json(decided))
    assert decided["decision_id"] == result.decision.decision_id
    assert decided["verdict"] == "allow_with_conditions" and decided["tenant"] == "acme"
    released = guard.audit.entry(release_receipt.leaf_index)
    assert released["kind"] == "release"
    assert released["output_sha256"] == result.provenance.sha256
    assert released["manifest_label"] == result.provenance.manifest_label
    text = json.dumps([guard.audit.entry(r.leaf_index) for r in result.receipts])
    for forbidden in ("embedding", "Model A", subject_id, grant_id, REQUESTER):
        assert forbidden not in text
    reading = read_manifest(result.image, "image/png")
    assert reading.guard_assertion is not None
    assert reading.guard_assertion["audit_leaf_hash"] == output_receipt.leaf_hash
    again = guard.audit.receipt_for_decision(result.decision.decision_id)
    assert again.leaf_index == output_receipt.leaf_index and verify_receipt(again, verifier)


def test_denials_are_audited_too_and_no_answer_leaves_unaudited(guard: Guard) -> None:
    from guard.audit import PRIVATE_KEY_FILE
    from guard.errors import Unavailable

    decision = guard.check(
        CheckRequest(requester=REQUESTER, operation="relight", image=sample_bytes("tom_hanks"))
    )
    entry = guard.audit.entry(guard.audit.receipt_for_decision(decision.decision_id).leaf_index)
    assert entry["verdict"] == "deny" and entry["figure_ids"] == ["tom-hanks"]
    (guard.settings.audit_keys_dir / PRIVATE_KEY_FILE).unlink()
    keyless = Guard(guard.settings, face_engine=guard.face_engine)
    with pytest.raises(Unavailable, match="guard secrets init"):
        keyless.check(
            CheckRequest(requester=REQUESTER, operation="relight", image=sample_bytes("tom_hanks"))
        )
