"""One test per rule of every shipped policy (policies/*.yaml): for each rule, a request
that this rule and no other fails, and the reason it gives. A rule added to a policy without a
case here fails ``test_every_rule_has_a_case``."""

from __future__ import annotations

from datetime import timedelta

import pytest

from guard.config import POLICIES_DIR
from guard.identity import ConsentLevel
from guard.policy import DriftFact, Policy, PromptSubject, RequestFacts, decide, load_policy
from tests.support.policy_facts import (
    DEFAULT,
    NEWSROOM,
    NOW,
    STRICT,
    face,
    facts,
    failed_rules,
    grant,
)

CONSENTED = face(subject=True, grants=(grant(),))
OWN_FIGURE = face(subject=True, figure=True, grants=(grant(),), linked_figure="fig")
ATTESTED = (grant(level=ConsentLevel.ATTESTED),)
NAMED = {"rule": "exact", "span": "0:8", "matched": "Jane Doe"}
UNCONSENTED_NAME = (PromptSubject("sub_9", (), NAMED),)
DRIFTED = (DriftFact(0, 0, 0.5, 0.93),)

# Rules the default and newsroom policies share, with the request that fails each.
SHARED: dict[str, tuple[RequestFacts, str]] = {
    "prompt-named-subjects-need-consent": (facts(prompt_subjects=UNCONSENTED_NAME), "no_consent"),
    "no-sexual-content-of-real-people": (facts(CONSENTED, nsfw_score=0.9), "nsfw_real_person"),
    "identity-held": (facts(CONSENTED, stage="output", drift=DRIFTED), "identity_drift"),
}
# policy id -> rule id -> (request failing exactly that rule, the reason code it gives)
FAILING: dict[str, dict[str, tuple[RequestFacts, str]]] = {
    "default": {
        "permitted-operations": (facts(operation="face_swap"), "operation_not_permitted"),
        "public-figures-need-their-own-consent": (facts(face(figure=True)), "public_figure"),
        "public-figures-confirm-their-own-consent": (
            facts(face(subject=True, figure=True, grants=ATTESTED, linked_figure="fig")),
            "consent_not_confirmed",
        ),
        "subjects-need-consent": (facts(face(subject=True)), "no_consent"),
        "no-unknown-faces": (facts(face()), "no_consent"),
        "prompt-names-no-public-figure": (
            facts(prompt_figures=("fig",)),
            "prompt_names_public_figure",
        ),
        **SHARED,
    },
    "strict": {
        "permitted-operations": (
            facts(face(subject=True, grants=(grant(scopes=("sketch",)),)), operation="sketch"),
            "operation_not_permitted",
        ),
        "no-public-figures": (facts(OWN_FIGURE), "public_figure"),
        "no-public-figures-in-output": (facts(OWN_FIGURE, stage="output"), "output_public_figure"),
        "subjects-need-consent": (
            facts(face(subject=True, grants=(grant(expires_at=NOW),))),
            "consent_expired",
        ),
        "subjects-confirm-their-consent": (
            facts(face(subject=True, grants=ATTESTED)),
            "consent_not_confirmed",
        ),
        "no-unknown-faces": (facts(face()), "no_consent"),
        "prompt-names-no-public-figure": (
            facts(prompt_figures=("fig",)),
            "prompt_names_public_figure",
        ),
        "prompt-named-subjects-need-consent": (
            facts(prompt_subjects=UNCONSENTED_NAME),
            "no_consent",
        ),
        "no-sexual-content": (facts(nsfw_score=0.31), "nsfw_real_person"),
        "identity-held": (facts(CONSENTED, stage="output", drift=DRIFTED), "identity_drift"),
        "no-new-faces-in-output": (facts(CONSENTED, stage="output", appeared=(1,)), "no_consent"),
    },
    "newsroom": {
        "permitted-operations": (facts(operation="face_swap"), "operation_not_permitted"),
        "public-figures-only-illustrated": (facts(OWN_FIGURE), "public_figure"),
        "public-figures-only-illustrated-in-output": (
            facts(face(figure=True), stage="output"),
            "output_public_figure",
        ),
        "prompt-names-public-figure-only-illustrated": (
            facts(prompt_figures=("fig",)),
            "prompt_names_public_figure",
        ),
        "subjects-need-consent": (
            facts(face(subject=True, grants=(grant(revoked_at=NOW - timedelta(hours=1)),))),
            "consent_revoked",
        ),
        "bystanders-only-blurred": (facts(face()), "no_consent"),
        **SHARED,
    },
}
# Rules that deny nothing and only add conditions: the request that makes them apply.
CONDITIONS: dict[str, dict[str, tuple[RequestFacts, str]]] = {
    "newsroom": {
        "public-figures-labelled": (
            facts(face(figure=True), operation="sketch"),
            "visible_label",
        ),
        "named-public-figures-labelled": (
            facts(prompt_figures=("fig",), operation="sketch"),
            "visible_label",
        ),
    },
}
POLICIES = {"default": DEFAULT, "strict": STRICT, "newsroom": NEWSROOM}


def test_the_shipped_policies_are_the_files_in_the_folder() -> None:
    assert sorted(p.stem for p in POLICIES_DIR.glob("*.yaml")) == sorted(POLICIES)
    for name, policy in POLICIES.items():
        assert policy.id == name and policy == load_policy(POLICIES_DIR / f"{name}.yaml")


@pytest.mark.parametrize("policy_id", sorted(POLICIES))
def test_every_rule_has_a_case(policy_id: str) -> None:
    covered = {*FAILING[policy_id], *CONDITIONS.get(policy_id, {})}
    assert covered == {rule.id for rule in POLICIES[policy_id].rules}


@pytest.mark.parametrize(
    ("policy_id", "rule_id"),
    [(p, r) for p, cases in FAILING.items() for r in cases],
)
def test_rule_fails_with_its_reason(policy_id: str, rule_id: str) -> None:
    policy = POLICIES[policy_id]
    request, code = FAILING[policy_id][rule_id]
    decision = decide(policy, request)
    assert not decision.allowed
    assert failed_rules(policy, request) == [rule_id]
    [reason] = [r for r in decision.reasons if r.denies]
    assert (reason.code, reason.evidence["policy_rule"]) == (code, rule_id)
    assert decision.conditions == ()


@pytest.mark.parametrize(
    ("policy_id", "rule_id"),
    [(p, r) for p, cases in CONDITIONS.items() for r in cases],
)
def test_rule_adds_its_condition(policy_id: str, rule_id: str) -> None:
    request, condition = CONDITIONS[policy_id][rule_id]
    decision = decide(POLICIES[policy_id], request)
    assert decision.allowed and condition in decision.conditions
    assert rule_id in [r.rule for r in decision.rules]


def _allowed(policy: Policy, request: RequestFacts) -> bool:
    return decide(policy, request).allowed


def test_what_each_policy_allows_that_the_others_do_not() -> None:
    # A public figure who enrolled and granted it: default yes, strict never, newsroom only
    # as an illustration.
    assert _allowed(DEFAULT, facts(OWN_FIGURE))
    assert not _allowed(STRICT, facts(OWN_FIGURE))
    assert not _allowed(NEWSROOM, facts(OWN_FIGURE))
    # Newsroom: any public figure (no consent needed) as a sketch, labelled.
    sketch = decide(NEWSROOM, facts(face(figure=True), operation="sketch"))
    assert sketch.allowed and sketch.conditions == ("watermark_required", "visible_label")
    assert sketch.faces[0].reasons[0].code == "allowed_by_policy"
    assert "public-figures-only-illustrated" in sketch.faces[0].reasons[0].message
    assert not _allowed(DEFAULT, facts(face(figure=True), operation="sketch"))
    # Newsroom: a bystander only in a background blur.
    blurring = face(subject=True, grants=(grant(scopes=("background_blur",)),))
    assert _allowed(NEWSROOM, facts(blurring, face(index=1), operation="background_blur"))
    assert not _allowed(DEFAULT, facts(blurring, face(index=1), operation="background_blur"))
    # Strict: faces from nowhere in the output deny; the default only reports them.
    appeared = facts(CONSENTED, stage="output", appeared=(1,))
    assert (
        _allowed(DEFAULT, appeared)
        and "new_face_in_output" in decide(DEFAULT, appeared).reason_codes
    )
    assert not _allowed(STRICT, appeared)


def test_the_output_keeps_the_conditions_the_input_set() -> None:
    output = facts(stage="output", operation="sketch", carried_conditions=("visible_label",))
    assert decide(NEWSROOM, output).conditions == ("watermark_required", "visible_label")
