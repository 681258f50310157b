"""What goes into an audit entry, and what never does.

Every entry is a flat JSON object (hashed as canonical JSON, see :func:`canonical_json`) with
``v`` (format version), ``kind`` and ``time``. People appear only as keyed HMACs (``subject_refs``,
``grant_refs``, ``requester``, ``grantee``) made with the key of the entry's tenant
(:meth:`KeyedHasher.for_tenant`, derived from the guard's HMAC key), so the log can be published
to an auditor without revealing who asked or who was in the picture, two tenants' references to
one person cannot be joined, yet a subject's own references can be recomputed for an access
request (``guard audit subject``). Public-figure ids are public and appear as they are. Never
embeddings, images, names or raw ids of private people.

The ``hasher`` each function takes is the deployment's; the entry derives its tenant's from it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from guard.audit.log import AuditLog
from guard.identity import Blocklist, BlocklistSaved, RegistryChange, tenant_of
from guard.policy import Decision, Policy
from guard.secrets import KeyedHasher

# 2: references are keyed per tenant (1: with the deployment key itself).
ENTRY_VERSION = 2


def _evidence(decision: Decision, key: str) -> list[str]:
    values = {
        str(reason.evidence[key])
        for face in decision.faces
        for reason in face.reasons
        if reason.evidence.get(key) is not None
    }
    return sorted(values)


def decision_entry(
    decision: Decision,
    *,
    requester: str,
    operation: str,
    input_sha256: str | None,
    hasher: KeyedHasher,
) -> dict[str, Any]:
    """The entry for one decision (input gate or output scan), allow and deny alike. Its
    subjects and grants are the requester's tenant's (the matcher looks nowhere else), so every
    reference in it is made with that tenant's key."""
    tenant = tenant_of(requester)
    hasher = hasher.for_tenant(tenant)
    return {
        "v": ENTRY_VERSION,
        "kind": "decision",
        "time": decision.decided_at.astimezone(UTC).isoformat(),
        "tenant": tenant,
        "requester": hasher.ref("requester", requester),
        "operation": operation,
        "stage": decision.stage,
        "decision_id": decision.decision_id,
        "verdict": decision.verdict.value,
        "reason_codes": list(decision.reason_codes),
        "policy": {"id": decision.policy_id, "version": decision.policy_version},
        "input_sha256": input_sha256,
        "subject_refs": sorted(hasher.ref("subject", s) for s in _evidence(decision, "subject_id")),
        "grant_refs": sorted(hasher.ref("grant", g) for g in _evidence(decision, "grant_id")),
        "figure_ids": _evidence(decision, "figure_id"),
        # How each grant the decision relied on was obtained (attested, person_confirmed).
        "consent_levels": _evidence(decision, "consent_level"),
        # Where each face was (its box in the image's pixels), what it was taken for and its
        # verdict: a console draws the boxes on an outline of the image's size, never pixels.
        "image": list(decision.image_size) if decision.image_size else None,
        "faces": [
            {
                "face_index": face.face_index,
                "box": [int(v) for v in face.bbox],
                "kind": face.kind,
                "verdict": face.verdict.value,
            }
            for face in decision.faces
        ],
        # Which policy rules applied and how each came out (ids and codes only), for
        # `guard policy explain`.
        "rules": [
            {
                "rule": r.rule,
                "face_index": r.face_index,
                "passed": r.passed,
                "reason_codes": list(r.reason_codes),
            }
            for r in decision.rules
        ],
    }


def release_entry(
    decision: Decision,
    *,
    requester: str,
    output_sha256: str,
    watermark_record_id: str,
    manifest_label: str,
    hasher: KeyedHasher,
) -> dict[str, Any]:
    """The entry for an output that left the guard: which file, which mark, which manifest."""
    tenant = tenant_of(requester)
    return {
        "v": ENTRY_VERSION,
        "kind": "release",
        "time": datetime.now(UTC).isoformat(),
        "tenant": tenant,
        "requester": hasher.for_tenant(tenant).ref("requester", requester),
        "decision_id": decision.decision_id,
        "output_sha256": output_sha256,
        "watermark_record_id": watermark_record_id,
        "manifest_label": manifest_label,
    }


def registry_entry(change: RegistryChange, hasher: KeyedHasher) -> dict[str, Any]:
    """The entry for a consent-registry change (subject created or erased, templates enrolled,
    consent granted or revoked), its references made with the subject's tenant's key (a grantee
    lies in that tenant)."""
    hasher = hasher.for_tenant(change.tenant)
    return {
        "v": ENTRY_VERSION,
        "kind": change.kind,
        "time": datetime.now(UTC).isoformat(),
        "tenant": change.tenant,
        "subject_refs": [hasher.ref("subject", change.subject_id)],
        "grant_refs": [hasher.ref("grant", change.grant_id)] if change.grant_id else [],
        "grantee": hasher.ref("requester", change.grantee) if change.grantee else None,
        "scopes": list(change.scopes),
        "evidence_sha256": change.evidence_sha256,
        "count": change.count,
        # A public-figure link or unlink: the figure and the operator who acted.
        **({"figure_id": change.figure_id, "actor": change.actor} if change.figure_id else {}),
    }


def blocklist_entry(saved: BlocklistSaved) -> dict[str, Any]:
    """A saved change of the deployment's blocklist: who made it and which figures it added,
    removed or changed (ids only). Global, like the generations in force."""
    return {
        "v": ENTRY_VERSION,
        "kind": "blocklist_changed",
        "time": datetime.now(UTC).isoformat(),
        "generation": saved.generation,
        "actor": saved.actor,
        "figures_added": list(saved.added),
        "figures_removed": list(saved.removed),
        "figures_changed": list(saved.changed),
    }


def in_force_entry(kind: str, digest: str, **facts: Any) -> dict[str, Any]:
    """A policy or blocklist generation the guard started deciding under (``policy_in_force``,
    ``blocklist_in_force``): appended before the first decision that uses it, whoever changed it
    and however (CLI, file copy), so every decision can be tied to the rules it was made under."""
    return {
        "v": ENTRY_VERSION,
        "kind": kind,
        "time": datetime.now(UTC).isoformat(),
        "sha256": digest,
        **facts,
    }


class InForceRecorder:
    """Appends the policy and the blocklist generation in force, once each per change: before
    the first decision made under them, and never again while they stay the same (in this
    process, or in the log already: another worker may have appended them first)."""

    def __init__(self, log: AuditLog) -> None:
        self._log = log
        self._recorded: dict[str, str] = {}

    def record(self, policy: Policy, blocklist: Blocklist) -> None:
        figures = sorted(blocklist.figures)
        states: dict[str, tuple[str, dict[str, Any]]] = {
            "policy_in_force": (
                _digest(policy.model_dump(mode="json")),
                {"policy": {"id": policy.id, "version": policy.version}},
            ),
            "blocklist_in_force": (
                _digest({"generation": blocklist.generation, "figures": figures}),
                {
                    "generation": blocklist.generation,
                    "engine": blocklist.engine_name,
                    "figure_ids": figures,
                },
            ),
        }
        for kind, (digest, facts) in states.items():
            if self._recorded.get(kind) == digest:
                continue
            logged = self._log.entries_mentioning(digest)
            if not any(entry.get("kind") == kind for _, entry in logged):
                self._log.append(in_force_entry(kind, digest, **facts))
            self._recorded[kind] = digest


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def usage_flag_entry(*, tenant: str, key_id: str, rule: str, detail: str) -> dict[str, Any]:
    """A usage-monitoring flag raised on an API key (its throttling starts now)."""
    return {
        "v": ENTRY_VERSION,
        "kind": "usage_flag",
        "time": datetime.now(UTC).isoformat(),
        "tenant": tenant,
        "key_id": key_id,
        "rule": rule,
        "detail": detail,
    }
