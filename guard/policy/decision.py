"""What a decision is: a verdict, the reasons behind it, one explanation per face."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from guard.faces import BBox

EvidenceValue = str | int | float | bool | None


def _nobody_hidden(_subject_id: str) -> bool:
    return False


class Verdict(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    ALLOW_WITH_CONDITIONS = "allow_with_conditions"


class ReasonCode(StrEnum):
    """Stable codes: integrations and the HTTP problem types key on these strings."""

    # denials
    PUBLIC_FIGURE = "public_figure"
    NO_CONSENT = "no_consent"
    CONSENT_EXPIRED = "consent_expired"
    CONSENT_NOT_YET_VALID = "consent_not_yet_valid"
    CONSENT_REVOKED = "consent_revoked"
    SCOPE_NOT_GRANTED = "scope_not_granted"
    CONSENT_NOT_CONFIRMED = "consent_not_confirmed"
    OPERATION_NOT_PERMITTED = "operation_not_permitted"
    PROMPT_NAMES_PUBLIC_FIGURE = "prompt_names_public_figure"
    OUTPUT_PUBLIC_FIGURE = "output_public_figure"
    IDENTITY_DRIFT = "identity_drift"
    NSFW_REAL_PERSON = "nsfw_real_person"
    UNAVAILABLE = "unavailable"
    # allowances
    CONSENT_GRANTED = "consent_granted"
    PUBLIC_FIGURE_OWN_CONSENT = "public_figure_own_consent"
    UNKNOWN_FACE_ALLOWED = "unknown_face_allowed"
    NO_FACES = "no_faces"
    IDENTITY_PRESERVED = "identity_preserved"
    ALLOWED_BY_POLICY = "allowed_by_policy"
    # information: on its own it denies nothing (an unknown or blocked face still does)
    NEW_FACE_IN_OUTPUT = "new_face_in_output"
    UNREADABLE_FACE = "unreadable_face"


DENY_CODES = frozenset(
    {
        ReasonCode.PUBLIC_FIGURE,
        ReasonCode.NO_CONSENT,
        ReasonCode.CONSENT_EXPIRED,
        ReasonCode.CONSENT_NOT_YET_VALID,
        ReasonCode.CONSENT_NOT_CONFIRMED,
        ReasonCode.CONSENT_REVOKED,
        ReasonCode.SCOPE_NOT_GRANTED,
        ReasonCode.OPERATION_NOT_PERMITTED,
        ReasonCode.PROMPT_NAMES_PUBLIC_FIGURE,
        ReasonCode.OUTPUT_PUBLIC_FIGURE,
        ReasonCode.IDENTITY_DRIFT,
        ReasonCode.NSFW_REAL_PERSON,
        ReasonCode.UNAVAILABLE,
    }
)


@dataclass(frozen=True)
class Reason:
    code: ReasonCode
    message: str
    evidence: dict[str, EvidenceValue] = field(default_factory=dict)

    @property
    def denies(self) -> bool:
        return self.code in DENY_CODES


@dataclass(frozen=True)
class FaceDecision:
    """Why one face is or is not allowed."""

    face_index: int
    bbox: BBox
    kind: str
    verdict: Verdict
    reasons: tuple[Reason, ...]
    # For usage monitoring only (see FaceFacts); the HTTP service leaves it out of responses
    # so that it cannot serve as an oracle for evading the blocklist.
    near_miss_figure_id: str | None = None


@dataclass(frozen=True)
class RuleOutcome:
    """What one policy rule said about the request (``face_index`` None) or one face: ids and
    codes only, so that it can go into the audit log (``guard policy explain`` reads it)."""

    rule: str
    face_index: int | None
    passed: bool
    reason_codes: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    """The answer to one request at one stage (``input`` gate or ``output`` scan)."""

    verdict: Verdict
    reasons: tuple[Reason, ...]
    policy_id: str
    policy_version: str
    stage: str
    faces: tuple[FaceDecision, ...] = ()
    conditions: tuple[str, ...] = ()
    # Every rule that applied, in policy order.
    rules: tuple[RuleOutcome, ...] = ()
    decision_id: str = field(default_factory=lambda: f"dec_{uuid.uuid4().hex}")
    decided_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The decided image's (width, height): the faces' boxes are in its pixels. The audit entry
    # records both, so a console can draw where each face was without the picture.
    image_size: tuple[int, int] | None = None

    @property
    def allowed(self) -> bool:
        return self.verdict is not Verdict.DENY

    @property
    def reason_codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.code.value for r in self.reasons))

    @property
    def unavailable(self) -> bool:
        """Whether this is the fail-closed deny of a guard that could not decide (the policy,
        registry, blocklist or a key could not be read), not a policy's answer: the service
        answers 503 and the CLI exits 3 for it, so an operator looks at the setting, not the
        request."""
        return any(reason.code is ReasonCode.UNAVAILABLE for reason in self.reasons)

    def to_dict(self, *, hidden: Callable[[str], bool] = _nobody_hidden) -> dict[str, Any]:
        """The JSON form every interface prints (HTTP bodies, ``--json``, reports).

        ``hidden(subject_id)`` says which subjects the reader may not see (another tenant's, or
        one erased since): a face matched to one reads as an unknown face with no consent on
        record, with neither the subject's id nor its similarity. A decision never matches
        another tenant's subject in the first place (the matcher searches only the requester's
        tenant, so such a face is decided as a face nobody enrolled); this is a second line.
        The rules that applied and near-miss hints are left out: they would tell a caller that
        a face matched someone (the audit log keeps the rules; ``guard policy explain`` shows
        them)."""
        faces = []
        for face in self.faces:
            masked = any(_names_hidden(r, hidden) for r in face.reasons)
            faces.append(
                {
                    "face_index": face.face_index,
                    "bbox": list(face.bbox),
                    "kind": "unknown" if masked else face.kind,
                    "verdict": face.verdict.value,
                    "reasons": [_reason(r, hidden) for r in face.reasons],
                }
            )
        return {
            "decision_id": self.decision_id,
            "verdict": self.verdict.value,
            "stage": self.stage,
            "reason_codes": list(self.reason_codes),
            "reasons": [_reason(r, hidden) for r in self.reasons],
            "faces": faces,
            "policy": {"id": self.policy_id, "version": self.policy_version},
            "conditions": list(self.conditions),
            "decided_at": self.decided_at.isoformat(),
        }


_HIDDEN_MESSAGE = "no consent on record for this requester"


def _names_hidden(reason: Reason, hidden: Callable[[str], bool]) -> bool:
    subject_id = reason.evidence.get("subject_id")
    return subject_id is not None and hidden(str(subject_id))


def _reason(reason: Reason, hidden: Callable[[str], bool]) -> dict[str, Any]:
    if _names_hidden(reason, hidden):
        face_index = reason.evidence.get("face_index")
        return {
            "code": reason.code.value,
            "message": _HIDDEN_MESSAGE,
            "evidence": {} if face_index is None else {"face_index": face_index},
        }
    return {"code": reason.code.value, "message": reason.message, "evidence": dict(reason.evidence)}
