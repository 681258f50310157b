"""Library objects → response bodies, with each tenant's view of shared facts.

A face matched to a subject enrolled by *another* tenant is shown as an unknown face with no
consent on record: the decision (deny) is the same, but neither the subject's id nor its
similarity leaves the tenant that owns it. Near-miss hints are never shown (they would tell a
prober how close a disguise came to a public figure).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from guard.audit import Receipt
from guard.errors import NotFound
from guard.identity import ConsentGrant, ConsentRegistry, PublicFigure, Subject
from guard.policy import Decision, Reason
from guard.provenance import StampedImage

_HIDDEN_MESSAGE = "no consent on record for this requester"


def own_subject(registry: ConsentRegistry, subject_id: str, tenant: str) -> Subject:
    """The subject if it belongs to ``tenant``; :class:`NotFound` otherwise, exactly as for
    one that does not exist."""
    try:
        subject = registry.get_subject(subject_id)
        if subject.tenant == tenant:
            return subject
    except NotFound:
        pass
    raise NotFound(f"no subject {subject_id} in tenant {tenant}")


def tenant_visibility(registry: ConsentRegistry, tenant: str) -> Callable[[str], bool]:
    """``visible(subject_id)``: whether the subject belongs to ``tenant`` (memoised)."""
    seen: dict[str, bool] = {}

    def visible(subject_id: str) -> bool:
        if subject_id not in seen:
            try:
                own_subject(registry, subject_id, tenant)
                seen[subject_id] = True
            except NotFound:
                seen[subject_id] = False
        return seen[subject_id]

    return visible


def _hidden(reason: Reason, visible: Callable[[str], bool]) -> bool:
    subject_id = reason.evidence.get("subject_id")
    return subject_id is not None and not visible(str(subject_id))


def _reason(reason: Reason, visible: Callable[[str], bool]) -> dict[str, Any]:
    if _hidden(reason, visible):
        face_index = reason.evidence.get("face_index")
        return {
            "code": reason.code.value,
            "message": _HIDDEN_MESSAGE,
            "evidence": {} if face_index is None else {"face_index": face_index},
        }
    return {"code": reason.code.value, "message": reason.message, "evidence": reason.evidence}


def decision_body(decision: Decision, visible: Callable[[str], bool]) -> dict[str, Any]:
    faces = []
    for face in decision.faces:
        hidden = any(_hidden(r, visible) for r in face.reasons)
        faces.append(
            {
                "face_index": face.face_index,
                "bbox": list(face.bbox),
                "kind": "unknown" if hidden else face.kind,
                "verdict": face.verdict.value,
                "reasons": [_reason(r, visible) for r in face.reasons],
            }
        )
    return {
        "decision_id": decision.decision_id,
        "verdict": decision.verdict.value,
        "stage": decision.stage,
        "reason_codes": list(decision.reason_codes),
        "reasons": [_reason(r, visible) for r in decision.reasons],
        "faces": faces,
        "policy": {"id": decision.policy_id, "version": decision.policy_version},
        "conditions": list(decision.conditions),
        "decided_at": decision.decided_at.isoformat(),
    }


def receipt_body(receipt: Receipt) -> dict[str, Any]:
    return receipt.to_dict()


def image_body(stamped: StampedImage) -> dict[str, Any]:
    return {
        "media_type": stamped.mime_type,
        "sha256": stamped.sha256,
        "data_base64": base64.b64encode(stamped.data).decode("ascii"),
    }


def provenance_body(stamped: StampedImage) -> dict[str, Any]:
    return {
        "watermark_record_id": f"{stamped.record_id:012x}",
        "manifest_label": stamped.manifest_label,
        "fingerprint": stamped.fingerprint,
    }


def subject_body(subject: Subject) -> dict[str, Any]:
    return {
        "id": subject.id,
        "tenant": subject.tenant,
        "display_name": subject.display_name,
        "public_figure_id": subject.public_figure_id,
        "created_at": subject.created_at.isoformat(),
        "template_count": subject.template_count,
    }


def grant_body(grant: ConsentGrant, now: Any) -> dict[str, Any]:
    return {
        "id": grant.id,
        "subject_id": grant.subject_id,
        "grantee": grant.grantee,
        "scopes": list(grant.scopes),
        "not_before": grant.not_before.isoformat(),
        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
        "revoked_at": grant.revoked_at.isoformat() if grant.revoked_at else None,
        "evidence_sha256": grant.evidence_sha256,
        "created_at": grant.created_at.isoformat(),
        "status": grant.status_at(now).value,
    }


def figure_body(figure: PublicFigure) -> dict[str, Any]:
    return {
        "id": figure.id,
        "name": figure.name,
        "aliases": list(figure.aliases),
        "references": len(figure.vector_ids),
    }
