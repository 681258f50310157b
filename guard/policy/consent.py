"""Consent reasons: which of a subject's grants to a requester allows an operation now, or the
most specific reason none does (revoked, expired, not yet valid, scope not granted, none)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from guard.identity import ConsentGrant, GrantStatus, Match, MatchKind
from guard.policy.decision import Reason, ReasonCode

_GRANT_PROBLEMS: tuple[tuple[GrantStatus, ReasonCode, str], ...] = (
    (GrantStatus.REVOKED, ReasonCode.CONSENT_REVOKED, "the consent grant was revoked"),
    (GrantStatus.EXPIRED, ReasonCode.CONSENT_EXPIRED, "the consent grant has expired"),
    (
        GrantStatus.NOT_YET_VALID,
        ReasonCode.CONSENT_NOT_YET_VALID,
        "the consent grant is not valid yet",
    ),
)


def match_evidence(match: Match) -> dict[str, str | int | float | bool | None]:
    key = "figure_id" if match.kind == MatchKind.PUBLIC_FIGURE else "subject_id"
    return {key: match.identity_id, "similarity": match.similarity, "threshold": match.threshold}


def consent_reason(
    subject_id: str,
    grants: Sequence[ConsentGrant],
    operation: str,
    at: datetime,
    evidence: Mapping[str, str | int | float | bool | None],
) -> Reason:
    """The reason a subject's grants to this requester allow or deny ``operation`` at ``at``."""
    evidence = {"subject_id": subject_id, **evidence}
    statuses = [(g, g.status_at(at)) for g in grants]
    for grant, status in statuses:
        if status is GrantStatus.ACTIVE and operation in grant.scopes:
            return Reason(
                ReasonCode.CONSENT_GRANTED,
                f"subject {subject_id} granted '{operation}' to this requester",
                {**evidence, "grant_id": grant.id, "consent_level": grant.level.value},
            )
    active = [g for g, s in statuses if s is GrantStatus.ACTIVE]
    if active:
        return Reason(
            ReasonCode.SCOPE_NOT_GRANTED,
            f"subject {subject_id} did not grant '{operation}' "
            f"(granted: {', '.join(sorted({s for g in active for s in g.scopes}))})",
            {**evidence, "grant_id": active[0].id},
        )
    for wanted, code, message in _GRANT_PROBLEMS:
        for grant, status in statuses:
            if status is wanted:
                return Reason(
                    code, f"subject {subject_id}: {message}", {**evidence, "grant_id": grant.id}
                )
    return Reason(
        ReasonCode.NO_CONSENT,
        f"subject {subject_id} has no consent grant for this requester",
        evidence,
    )


def how_named(mention: Mapping[str, str] | None) -> str:
    if not mention:
        return ""
    return f" ({mention['rule']} match: {mention['matched']!r})"
