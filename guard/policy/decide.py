"""``decide(policy, facts)``: the only place that turns facts into a verdict.

The rules, in the order they are applied to each face:

1. A face that matches a public figure is denied (``public_figure``; ``output_public_figure``
   on the output) unless the policy allows own consent, the face also matches the enrolled
   subject linked to that very figure, and that subject granted this requester this operation.
2. A face that matches an enrolled subject needs a grant to this requester that is active now
   (not revoked, inside ``not_before``..``expires_at``) and whose scopes include the operation;
   otherwise the most specific reason is given (``scope_not_granted`` > ``consent_revoked`` >
   ``consent_expired`` > ``consent_not_yet_valid`` > ``no_consent``).
3. A face that matches nobody is denied (``no_consent``) unless ``unknown_faces: allow``.

Request-wide: an operation the policy does not list is denied; a prompt that names a public
figure is denied unless ``prompt_public_figures: allow``; on the output, an allowed input face
whose identity drifted below the engine's drift threshold is denied (``identity_drift``);
an image with any face whose NSFW score reaches ``nsfw.threshold`` is denied
(``nsfw_real_person``), whatever the grants say. No face at all is allowed. Any deny reason
makes the verdict ``deny``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from guard.identity import ConsentGrant, FaceFacts, GrantStatus, Match
from guard.policy.decision import Decision, FaceDecision, Reason, ReasonCode, Verdict
from guard.policy.model import Policy

Stage = Literal["input", "output"]


@dataclass(frozen=True)
class DriftFact:
    """How similar an allowed input face is to its best counterpart in the output."""

    input_face_index: int
    output_face_index: int | None
    similarity: float
    threshold: float


@dataclass(frozen=True)
class RequestFacts:
    stage: Stage
    requester: str
    operation: str
    faces: tuple[FaceFacts, ...]
    prompt_figures: tuple[str, ...] = ()
    # Per named figure: how the prompt named it (rule, span, matched text), for the evidence.
    prompt_mentions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    drift: tuple[DriftFact, ...] = ()
    # Output faces that are nobody from the input (output stage of an edit).
    appeared: tuple[int, ...] = ()
    # The NSFW classifier's score (None: screening switched off) and the classes it saw.
    nsfw_score: float | None = None
    nsfw_labels: tuple[str, ...] = ()
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


_GRANT_PROBLEMS: tuple[tuple[GrantStatus, ReasonCode, str], ...] = (
    (GrantStatus.REVOKED, ReasonCode.CONSENT_REVOKED, "the consent grant was revoked"),
    (GrantStatus.EXPIRED, ReasonCode.CONSENT_EXPIRED, "the consent grant has expired"),
    (
        GrantStatus.NOT_YET_VALID,
        ReasonCode.CONSENT_NOT_YET_VALID,
        "the consent grant is not valid yet",
    ),
)


def _match_evidence(match: Match) -> dict[str, str | int | float | bool | None]:
    key = "figure_id" if match.kind == "public_figure" else "subject_id"
    return {key: match.identity_id, "similarity": match.similarity, "threshold": match.threshold}


def _consent_reason(
    subject: Match, grants: Sequence[ConsentGrant], operation: str, at: datetime
) -> Reason:
    """The reason a matched subject's grants allow or deny ``operation`` now."""
    evidence = _match_evidence(subject)
    statuses = [(g, g.status_at(at)) for g in grants]
    for grant, status in statuses:
        if status is GrantStatus.ACTIVE and operation in grant.scopes:
            return Reason(
                ReasonCode.CONSENT_GRANTED,
                f"subject {subject.identity_id} granted '{operation}' to this requester",
                {**evidence, "grant_id": grant.id},
            )
    active = [g for g, s in statuses if s is GrantStatus.ACTIVE]
    if active:
        return Reason(
            ReasonCode.SCOPE_NOT_GRANTED,
            f"subject {subject.identity_id} did not grant '{operation}' "
            f"(granted: {', '.join(sorted({s for g in active for s in g.scopes}))})",
            {**evidence, "grant_id": active[0].id},
        )
    for wanted, code, message in _GRANT_PROBLEMS:
        for grant, status in statuses:
            if status is wanted:
                return Reason(
                    code,
                    f"subject {subject.identity_id}: {message}",
                    {**evidence, "grant_id": grant.id},
                )
    return Reason(
        ReasonCode.NO_CONSENT,
        f"subject {subject.identity_id} has no consent grant for this requester",
        evidence,
    )


def _face_reason(policy: Policy, facts: RequestFacts, face: FaceFacts) -> Reason:
    figure, subject = face.figure, face.subject
    if figure is not None:
        code = (
            ReasonCode.OUTPUT_PUBLIC_FIGURE if facts.stage == "output" else ReasonCode.PUBLIC_FIGURE
        )
        if (
            policy.public_figures.allow_with_own_consent
            and subject is not None
            and face.linked_figure_id == figure.identity_id
        ):
            consent = _consent_reason(subject, face.grants, facts.operation, facts.at)
            if consent.code is ReasonCode.CONSENT_GRANTED:
                return Reason(
                    ReasonCode.PUBLIC_FIGURE_OWN_CONSENT,
                    f"public figure {figure.identity_id} enrolled and granted this use",
                    {**_match_evidence(figure), **consent.evidence},
                )
        if facts.stage == "output" and not policy.output.deny_public_figures:
            return Reason(
                ReasonCode.UNKNOWN_FACE_ALLOWED, "output public figures are allowed by policy"
            )
        return Reason(
            code, f"face matches public figure {figure.identity_id}", _match_evidence(figure)
        )
    if subject is not None:
        return _consent_reason(subject, face.grants, facts.operation, facts.at)
    if policy.unknown_faces == "allow" or (
        facts.stage == "output" and not policy.output.deny_unconsented_faces
    ):
        return Reason(ReasonCode.UNKNOWN_FACE_ALLOWED, "unknown face allowed by policy")
    return Reason(ReasonCode.NO_CONSENT, "unknown face: nobody with consent on record matches it")


def _how_named(mention: Mapping[str, str] | None) -> str:
    if not mention:
        return ""
    return f" ({mention['rule']} match: {mention['matched']!r})"


def _request_reasons(policy: Policy, facts: RequestFacts) -> list[Reason]:
    reasons = []
    if facts.operation not in policy.operations:
        reasons.append(
            Reason(
                ReasonCode.OPERATION_NOT_PERMITTED,
                f"operation '{facts.operation}' is not permitted by policy {policy.id} "
                f"(permitted: {', '.join(policy.operations)})",
                {"operation": facts.operation},
            )
        )
    if policy.prompt_public_figures == "deny":
        reasons.extend(
            Reason(
                ReasonCode.PROMPT_NAMES_PUBLIC_FIGURE,
                f"the prompt names public figure {figure_id}"
                + _how_named(facts.prompt_mentions.get(figure_id)),
                {"figure_id": figure_id, **facts.prompt_mentions.get(figure_id, {})},
            )
            for figure_id in facts.prompt_figures
        )
    if (
        policy.nsfw.deny_real_person
        and facts.faces
        and facts.nsfw_score is not None
        and facts.nsfw_score >= policy.nsfw.threshold
    ):
        reasons.append(
            Reason(
                ReasonCode.NSFW_REAL_PERSON,
                f"sexual content ({', '.join(facts.nsfw_labels) or 'classifier score'}) showing "
                f"a real person's face (score {facts.nsfw_score:.2f} >= "
                f"{policy.nsfw.threshold})",
                {"nsfw_score": facts.nsfw_score, "threshold": policy.nsfw.threshold},
            )
        )
    if facts.stage == "output":
        reasons.extend(
            Reason(
                ReasonCode.NEW_FACE_IN_OUTPUT,
                f"output face {index} is nobody from the input",
                {"output_face_index": index},
            )
            for index in facts.appeared
        )
        for d in facts.drift:
            evidence: dict[str, str | int | float | bool | None] = {
                "face_index": d.input_face_index,
                "output_face_index": d.output_face_index,
                "similarity": round(d.similarity, 4),
                "threshold": d.threshold,
            }
            if d.similarity >= d.threshold:
                reasons.append(
                    Reason(
                        ReasonCode.IDENTITY_PRESERVED,
                        f"input face {d.input_face_index} is still the same person "
                        f"(similarity {d.similarity:.3f})",
                        evidence,
                    )
                )
            elif policy.output.deny_identity_drift:
                reasons.append(
                    Reason(
                        ReasonCode.IDENTITY_DRIFT,
                        f"input face {d.input_face_index} is no longer the same person in the "
                        f"output (similarity {d.similarity:.3f} < {d.threshold})",
                        evidence,
                    )
                )
    return reasons


def decide(policy: Policy, facts: RequestFacts) -> Decision:
    """Apply ``policy`` to ``facts``; every face gets its own explanation."""
    face_decisions = []
    for face in facts.faces:
        reason = _face_reason(policy, facts, face)
        face_decisions.append(
            FaceDecision(
                face_index=face.face_index,
                bbox=face.bbox,
                kind=face.kind.value,
                verdict=Verdict.DENY if reason.denies else Verdict.ALLOW,
                reasons=(
                    Reason(
                        reason.code,
                        reason.message,
                        {"face_index": face.face_index, **reason.evidence},
                    ),
                ),
                near_miss_figure_id=face.near_miss_figure_id,
            )
        )
    reasons = [r for fd in face_decisions for r in fd.reasons] + _request_reasons(policy, facts)
    if not facts.faces:
        reasons.append(Reason(ReasonCode.NO_FACES, "no face in the image"))
    denied = any(r.denies for r in reasons)
    if denied:
        verdict = Verdict.DENY
    else:
        verdict = Verdict.ALLOW_WITH_CONDITIONS if policy.conditions else Verdict.ALLOW
    return Decision(
        verdict=verdict,
        reasons=tuple(reasons),
        policy_id=policy.id,
        policy_version=policy.version,
        stage=facts.stage,
        faces=tuple(face_decisions),
        conditions=() if denied else policy.conditions,
    )


def deny_unavailable(message: str, *, stage: Stage, policy: Policy | None = None) -> Decision:
    """The fail-closed answer when the registry, blocklist, policy or a key cannot be read."""
    return Decision(
        verdict=Verdict.DENY,
        reasons=(Reason(ReasonCode.UNAVAILABLE, message),),
        policy_id=policy.id if policy else "unavailable",
        policy_version=policy.version if policy else "unavailable",
        stage=stage,
    )
