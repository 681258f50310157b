"""End to end over a real uvicorn server: enroll → grant → edit allowed → the stamped image
verifies → revoke → the same edit is denied → the audit entries and receipts verify offline."""

from __future__ import annotations

import base64
import json

from guard.api import Role
from guard.audit import CheckpointVerifier, Receipt, canonical_json, verify_receipt
from tests.support.live import LiveFactory, image_part, params
from tests.support.registry import EVIDENCE


def _receipt(body: dict[str, object]) -> Receipt:
    return Receipt(
        leaf_index=int(body["leaf_index"]),  # type: ignore[call-overload]
        leaf_hash=str(body["leaf_hash"]),
        checkpoint=str(body["checkpoint"]),
        inclusion_proof=tuple(body["inclusion_proof"]),  # type: ignore[arg-type]
    )


def test_enroll_grant_edit_verify_revoke_deny_audit(live: LiveFactory) -> None:
    service = live()
    with service.client() as api, service.client(role=Role.AUDITOR) as auditor:
        subject = api.post("/v1/subjects", json={"display_name": "Eileen"})
        assert subject.status_code == 201, subject.text
        subject_id = subject.json()["id"]
        enrolled = api.post(f"/v1/subjects/{subject_id}/faces", files=image_part())
        assert enrolled.status_code == 201, enrolled.text

        edit = {"operation": "relight", "subject_ids": [subject_id]}
        before = api.post("/v1/edits", data=params(**edit), files=image_part())
        assert before.status_code == 403
        assert before.headers["content-type"] == "application/problem+json"
        assert before.json()["type"] == "https://likeness-guard.dev/problems/no_consent"

        grant = api.post(
            "/v1/consents",
            json={"subject_id": subject_id, "scopes": ["relight"], "evidence_sha256": EVIDENCE},
        )
        assert grant.status_code == 201, grant.text
        assert grant.json()["grantee"] == "acme/app"

        allowed = api.post("/v1/edits", data=params(**edit), files=image_part())
        assert allowed.status_code == 200, allowed.text
        body = allowed.json()
        assert body["decision"]["verdict"] == "allow_with_conditions"
        assert body["undetected_subject_ids"] == []
        # Receipts: input decision, output decision, release.
        assert len(body["receipts"]) == 3 and body["editor"] == {"name": "classic", "record": {}}
        stamped = base64.b64decode(body["image"]["data_base64"])
        assert stamped[:8] == b"\x89PNG\r\n\x1a\n"

        report = api.post("/v1/verify", files={"image": ("out.png", stamped, "image/png")})
        assert report.status_code == 200
        assert report.json()["outcome"] == "valid"
        assert report.json()["decision"]["decision_id"] == body["decision"]["decision_id"]

        revoked = api.post(f"/v1/consents/{grant.json()['id']}/revoke")
        assert revoked.json()["status"] == "revoked"
        after = api.post("/v1/edits", data=params(**edit), files=image_part())
        assert after.status_code == 403
        assert after.json()["code"] == "consent_revoked"
        assert after.headers["x-guard-decision"] == "deny"

        # Offline verification with nothing but the published key.
        checkpoint = auditor.get("/v1/audit/checkpoint").json()
        verifier = CheckpointVerifier.from_key_string(checkpoint["verifier_key"])
        for receipt in [*body["receipts"], *after.json()["receipts"]]:
            entry = auditor.get(f"/v1/audit/entries/{receipt['leaf_index']}").json()["entry"]
            assert verify_receipt(_receipt(receipt), verifier, canonical_json(entry))
        latest = auditor.get(
            f"/v1/audit/decisions/{after.json()['decision']['decision_id']}/receipt"
        )
        assert verify_receipt(_receipt(latest.json()), verifier)

        kinds = [
            e["entry"]["kind"]
            for e in auditor.get("/v1/audit/entries?limit=1000").json()["entries"]
        ]
        for kind in ("subject_created", "templates_enrolled", "consent_granted", "release"):
            assert kind in kinds
        assert "consent_revoked" in kinds

        report_entries = auditor.get(f"/v1/subjects/{subject_id}/report").json()
        assert {e["entry"]["kind"] for e in report_entries} >= {"consent_granted", "decision"}
        # The export verifies line by line and leaks no raw subject id.
        export = auditor.get("/v1/audit/export")
        assert export.status_code == 200
        lines = [json.loads(line) for line in export.text.splitlines()]
        assert len(lines) == len(kinds)
        assert subject_id not in export.text
        for line in lines:
            assert verify_receipt(
                _receipt(line["receipt"]), verifier, canonical_json(line["entry"])
            )


def test_text_only_check_and_stamp_of_an_external_generator(live: LiveFactory) -> None:
    service = live()
    with service.client() as api:
        check = api.post("/v1/checks", data=params(operation="generate", prompt="a red bicycle"))
        assert check.status_code == 200, check.text
        assert check.json()["decision"]["reason_codes"] == ["no_faces"]
        # A photo of an unknown person, as an external generator's output: denied by default.
        stamp = api.post(
            "/v1/stamps", data=params(generator="acme-diffusion"), files=image_part("t1")
        )
        assert stamp.status_code == 403
        assert stamp.json()["code"] == "no_consent"
        assert stamp.json()["decision"]["stage"] == "output"
