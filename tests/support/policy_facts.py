"""Facts for policy tests: grants, faces and requests without any image or database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from guard.config import POLICIES_DIR
from guard.identity import ConsentGrant, ConsentLevel, FaceFacts, Match, MatchKind
from guard.policy import Policy, RequestFacts, decide, load_policy

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DEFAULT = load_policy(POLICIES_DIR / "default.yaml")
STRICT = load_policy(POLICIES_DIR / "strict.yaml")
NEWSROOM = load_policy(POLICIES_DIR / "newsroom.yaml")


def grant(
    *,
    scopes: tuple[str, ...] = ("relight",),
    not_before: datetime = NOW - timedelta(days=1),
    expires_at: datetime | None = NOW + timedelta(days=1),
    revoked_at: datetime | None = None,
    subject_id: str = "sub_1",
    level: ConsentLevel = ConsentLevel.PERSON_CONFIRMED,
) -> ConsentGrant:
    """A grant in force at NOW; confirmed by the person unless ``level`` says otherwise (the
    consent-level rules have their own attested cases)."""
    return ConsentGrant(
        "grt_1",
        subject_id,
        "app",
        scopes,
        not_before,
        expires_at,
        revoked_at,
        "0" * 64,
        NOW,
        level=level,
    )


def face(
    *,
    subject: bool = False,
    figure: bool = False,
    grants: tuple[ConsentGrant, ...] = (),
    linked_figure: str | None = None,
    index: int = 0,
) -> FaceFacts:
    return FaceFacts(
        face_index=index,
        bbox=(0, 0, 10, 10),
        subject=Match(index, MatchKind.CONSENTED_SUBJECT, "sub_1", 0.99, 0.93) if subject else None,
        figure=Match(index, MatchKind.PUBLIC_FIGURE, "fig", 0.97, 0.93) if figure else None,
        grants=grants,
        linked_figure_id=linked_figure,
    )


def facts(*faces: FaceFacts, operation: str = "relight", **kwargs: Any) -> RequestFacts:
    return RequestFacts(
        stage=kwargs.pop("stage", "input"),
        requester=kwargs.pop("requester", "app"),
        operation=operation,
        faces=faces,
        at=NOW,
        **kwargs,
    )


def codes(policy: Policy, request: RequestFacts) -> tuple[str, ...]:
    return decide(policy, request).reason_codes


def failed_rules(policy: Policy, request: RequestFacts) -> list[str]:
    return [r.rule for r in decide(policy, request).rules if not r.passed]
