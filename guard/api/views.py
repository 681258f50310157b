"""Library objects → response bodies, with each tenant's view of shared facts.

Decisions are serialised by :meth:`~guard.policy.Decision.to_dict` (one JSON form for every
interface); here is which subjects a tenant may see in them: a face matched to a subject
enrolled by *another* tenant is shown as an unknown face with no consent on record.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from guard.audit import Receipt
from guard.errors import NotFound
from guard.identity import ConsentGrant, ConsentRegistry, PublicFigure, Subject
from guard.provenance import StampedImage
from guard.requests import Result


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


def hidden_from(registry: ConsentRegistry, tenant: str) -> Callable[[str], bool]:
    """``hidden(subject_id)``: whether the subject is not ``tenant``'s (memoised per call).
    :meth:`Decision.to_dict` shows such a subject as nobody."""
    seen: dict[str, bool] = {}

    def hidden(subject_id: str) -> bool:
        if subject_id not in seen:
            try:
                own_subject(registry, subject_id, tenant)
                seen[subject_id] = False
            except NotFound:
                seen[subject_id] = True
        return seen[subject_id]

    return hidden


def receipt_body(receipt: Receipt) -> dict[str, Any]:
    return receipt.to_dict()


def image_body(stamped: StampedImage) -> dict[str, Any]:
    return {
        "media_type": stamped.mime_type,
        "sha256": stamped.sha256,
        "data_base64": base64.b64encode(stamped.data).decode("ascii"),
    }


def outcome_body(result: Result, hidden: Callable[[str], bool]) -> dict[str, Any]:
    """An edit's or stamp's decisions, receipts and provenance as one tenant may see them,
    with the image described but not included (an edit job's stored outcome)."""
    body: dict[str, Any] = {
        "decision": result.decision.to_dict(hidden=hidden),
        "input_decision": result.input_decision.to_dict(hidden=hidden),
        "receipts": [receipt_body(r) for r in result.receipts],
    }
    if result.provenance is not None:
        stamped = result.provenance
        body["image"] = {"media_type": stamped.mime_type, "sha256": stamped.sha256}
        body["provenance"] = provenance_body(stamped)
        body["editor"] = {"name": result.editor, "record": dict(result.editor_record)}
    return body


def outcome_view(
    registry: Callable[[], ConsentRegistry],
) -> Callable[[Result, str], dict[str, Any]]:
    """``view(result, tenant)``: :func:`outcome_body` for ``tenant`` (what an edit job keeps)."""

    def view(result: Result, tenant: str) -> dict[str, Any]:
        return outcome_body(result, hidden_from(registry(), tenant))

    return view


def provenance_body(stamped: StampedImage) -> dict[str, Any]:
    return {
        "watermark_record_id": stamped.record_id,
        "manifest_label": stamped.manifest_label,
        "fingerprint": stamped.fingerprint,
    }


def subject_body(subject: Subject) -> dict[str, Any]:
    return {
        "id": subject.id,
        "tenant": subject.tenant,
        "display_name": subject.display_name,
        "public_figure_id": subject.public_figure_id,
        "public_figure_link": (
            {
                "figure_id": link.figure_id,
                "linked_by": link.linked_by,
                "linked_at": link.linked_at.isoformat(),
                "evidence_sha256": link.evidence_sha256,
            }
            if (link := subject.public_figure_link)
            else None
        ),
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
        "consent_level": grant.level.value,
        "confirmed_at": grant.confirmed_at.isoformat() if grant.confirmed_at else None,
    }


def figure_body(figure: PublicFigure) -> dict[str, Any]:
    return {
        "id": figure.id,
        "name": figure.name,
        "aliases": list(figure.aliases),
        "references": len(figure.vector_ids),
    }
