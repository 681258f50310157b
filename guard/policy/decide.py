"""``decide(policy, facts)``: the only place that turns facts into a verdict.

Every rule of the policy (see :mod:`guard.policy.rules`) is applied in order: request rules
once, face rules to each face. A rule that fails denies, with its reasons; a rule that passes
may explain why (``consent_granted``, ``identity_preserved``). The verdict is ``deny`` if any
rule failed; otherwise ``allow_with_conditions`` when the policy or an applied rule sets
conditions (``watermark_required``, ``visible_label``), else ``allow``; the output decision
keeps the conditions the input gate set. A face no rule gave a reason for is explained as
``unknown_face_allowed`` (unknown faces) or ``allowed_by_policy``, naming the rules it passed.
Faces in the output that are nobody from the input are reported (``new_face_in_output``), and
so are faces the identity engine could not read (``unreadable_face``: they count as unknown
faces); on their own these deny nothing.
"""

from __future__ import annotations

from guard.identity import MatchKind
from guard.policy.decision import Decision, FaceDecision, Reason, ReasonCode, Verdict
from guard.policy.facts import Context, RequestFacts, Stage
from guard.policy.model import Policy
from guard.policy.rules import RuleResult


def _evaluate(policy: Policy, facts: RequestFacts) -> list[RuleResult]:
    results: list[RuleResult] = []
    for rule in policy.rules:
        contexts = (
            [Context(facts)]
            if rule.applies_to == "request"
            else [Context(facts, face) for face in facts.faces]
        )
        results.extend(r for c in contexts if (r := rule.result(c)) is not None)
    return results


def _unique(reasons: list[Reason]) -> tuple[Reason, ...]:
    seen: dict[tuple[str, str, str | int | float | bool | None], Reason] = {}
    for reason in reasons:
        seen.setdefault((reason.code, reason.message, reason.evidence.get("face_index")), reason)
    return tuple(seen.values())


def _face_decisions(
    policy: Policy, facts: RequestFacts, results: list[RuleResult]
) -> list[FaceDecision]:
    decisions = []
    for face in facts.faces:
        mine = [r for r in results if r.face_index == face.face_index]
        reasons = list(_unique([reason for r in mine for reason in r.reasons]))
        if not reasons:
            passed = ", ".join(r.rule_id for r in mine)
            reasons.append(
                Reason(
                    ReasonCode.UNKNOWN_FACE_ALLOWED
                    if face.kind is MatchKind.UNKNOWN
                    else ReasonCode.ALLOWED_BY_POLICY,
                    f"allowed by rules {passed} of policy {policy.id}"
                    if passed
                    else f"no rule of policy {policy.id} restricts this face",
                    {"face_index": face.face_index},
                )
            )
        if not face.readable:
            reasons.append(
                Reason(
                    ReasonCode.UNREADABLE_FACE,
                    f"face {face.face_index} is covered or turned away: it was seen but cannot "
                    "be identified, so it counts as an unknown face",
                    {"face_index": face.face_index},
                )
            )
        denied = any(not r.passed for r in mine)
        decisions.append(
            FaceDecision(
                face_index=face.face_index,
                bbox=face.bbox,
                kind=face.kind.value,
                verdict=Verdict.DENY if denied else Verdict.ALLOW,
                reasons=tuple(reasons),
                near_miss_figure_id=face.near_miss_figure_id,
            )
        )
    return decisions


def decide(policy: Policy, facts: RequestFacts) -> Decision:
    """Apply ``policy`` to ``facts``; every face gets its own explanation."""
    results = _evaluate(policy, facts)
    face_decisions = _face_decisions(policy, facts, results)
    reasons = [r for fd in face_decisions for r in fd.reasons]
    reasons.extend(_unique([r for res in results if res.face_index is None for r in res.reasons]))
    if facts.stage == "output":
        reasons.extend(
            Reason(
                ReasonCode.NEW_FACE_IN_OUTPUT,
                f"output face {index} is nobody from the input",
                {"output_face_index": index},
            )
            for index in facts.appeared
        )
    if not facts.faces:
        reasons.append(Reason(ReasonCode.NO_FACES, "no face in the image"))
    denied = any(not r.passed for r in results)
    conditions = tuple(
        dict.fromkeys(
            [
                *policy.conditions,
                *facts.carried_conditions,
                *(c for r in results for c in r.conditions),
            ]
        )
    )
    if denied:
        verdict = Verdict.DENY
    else:
        verdict = Verdict.ALLOW_WITH_CONDITIONS if conditions else Verdict.ALLOW
    return Decision(
        verdict=verdict,
        reasons=tuple(reasons),
        policy_id=policy.id,
        policy_version=policy.version,
        stage=facts.stage,
        faces=tuple(face_decisions),
        conditions=() if denied else conditions,
        rules=tuple(r.outcome() for r in results),
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
