"""The rule language itself: combinators, predicates, and the rules a policy file must obey
to load (guard/policy/rules.py)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from guard.policy import Policy, Verdict, decide, policy_problems
from guard.policy.rules import Context, Rule
from tests.support.policy_facts import DEFAULT, NEWSROOM, STRICT, face, facts, grant

LEAVES: list[tuple[dict[str, Any], Any]] = [
    ({"has_faces": True}, lambda r: bool(r.faces)),
    ({"operation_in": ["relight"]}, lambda r: r.operation == "relight"),
    ({"tenant_in": ["acme"]}, lambda r: r.tenant == "acme"),
    ({"stage": "output"}, lambda r: r.stage == "output"),
    ({"faces_appeared": True}, lambda r: bool(r.appeared)),
]


def _expressions() -> st.SearchStrategy[tuple[dict[str, Any], Any]]:
    leaves = st.sampled_from(LEAVES)

    def extend(
        children: st.SearchStrategy[tuple[dict[str, Any], Any]],
    ) -> st.SearchStrategy[tuple[dict[str, Any], Any]]:
        many = st.lists(children, min_size=1, max_size=3)
        return st.one_of(
            many.map(
                lambda xs: (
                    {"all_of": [x[0] for x in xs]},
                    lambda r, xs=xs: all(x[1](r) for x in xs),
                )
            ),
            many.map(
                lambda xs: (
                    {"any_of": [x[0] for x in xs]},
                    lambda r, xs=xs: any(x[1](r) for x in xs),
                )
            ),
            children.map(lambda x: ({"not": x[0]}, lambda r, x=x: not x[1](r))),
        )

    return st.recursive(leaves, extend, max_leaves=8)


REQUESTS = st.builds(
    lambda has_face, operation, tenant, stage, appeared: facts(
        *((face(),) if has_face else ()),
        operation=operation,
        requester=f"{tenant}/app",
        stage=stage,
        appeared=(1,) if appeared else (),
    ),
    st.booleans(),
    st.sampled_from(["relight", "sketch"]),
    st.sampled_from(["acme", "globex"]),
    st.sampled_from(["input", "output"]),
    st.booleans(),
)


@given(_expressions(), REQUESTS)
def test_combinators_are_boolean_logic(
    expression: tuple[dict[str, Any], Any], request: Any
) -> None:
    text, meaning = expression
    rule = Rule.model_validate({"id": "r", "require": text, "reason": "no_consent"})
    assert rule.require is not None
    assert rule.require.evaluate(Context(request)).holds == meaning(request)
    result = rule.result(Context(request))
    assert result is not None and result.passed == meaning(request)
    # A failing rule always says why, with its id.
    if not result.passed:
        [reason] = result.reasons
        assert reason.code == "no_consent" and reason.evidence["policy_rule"] == "r"


@given(REQUESTS, st.sampled_from([DEFAULT, STRICT, NEWSROOM]))
def test_deny_exactly_when_a_rule_failed_and_every_failure_has_a_reason(
    request: Any, policy: Policy
) -> None:
    decision = decide(policy, request)
    failed = [r for r in decision.rules if not r.passed]
    assert (decision.verdict is Verdict.DENY) == bool(failed)
    assert all(r.reason_codes for r in failed)
    assert (decision.verdict is Verdict.DENY) == any(r.denies for r in decision.reasons)


def _problems(rules: list[dict[str, Any]], **extra: Any) -> list[str]:
    text = yaml.safe_dump({"id": "t", "version": "1", "rules": rules, **extra}, sort_keys=False)
    policy, problems = policy_problems(text)
    assert policy is None
    return [f"{p.location}: {p.message}" for p in problems]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"id": "a", "forbid": {"has_faces": True}}, "can fail without a reason of its own"),
        (
            {"id": "a", "applies_to": "each_face", "require": {"not": {"consent_granted": True}}},
            "can fail without a reason of its own",
        ),
        (
            {"id": "a", "require": {"prompt_names_public_figure": False}},
            "can fail without a reason of its own",
        ),
        ({"id": "a", "require": {"consent_granted": True}}, "looks at a face"),
        ({"id": "a", "when": {"face_kind": ["unknown"]}, "conditions": ["visible_label"]}, "face"),
        ({"id": "a", "require": {"has_faces": True}, "reason": "consent_granted"}, "does not deny"),
        ({"id": "a", "conditions": ["blink"]}, "unknown condition"),
        ({"id": "a"}, "needs require, forbid or conditions"),
        (
            {"id": "a", "require": {"has_faces": True}, "forbid": {"has_faces": False}},
            "not both",
        ),
        ({"id": "Bad Id", "conditions": ["visible_label"]}, "should match pattern"),
        ({"id": "a", "require": {"has_faces": True, "stage": "input"}}, "exactly one key"),
        ({"id": "a", "require": {"nsfw_score_at_least": 1.5}}, "less than or equal to 1"),
        ({"id": "a", "require": {"consent_granted": False}}, "Input should be True"),
    ],
)
def test_a_rule_that_could_not_explain_itself_does_not_load(
    rule: dict[str, Any], expected: str
) -> None:
    problems = _problems([rule])
    assert len(problems) == 1 and expected in problems[0], problems


def test_policy_level_problems() -> None:
    rule = {"id": "a", "conditions": ["visible_label"]}
    assert "repeated: a" in _problems([rule, rule])[0]
    assert "unknown condition" in _problems([rule], conditions=["watermark"])[0]


def test_natural_predicates_explain_their_outcome() -> None:
    rule = Rule.model_validate(
        {"id": "consent", "applies_to": "each_face", "require": {"consent_granted": True}}
    )
    result = rule.result(Context(facts(face(subject=True)), face(subject=True)))
    assert result is not None and not result.passed
    assert [r.code for r in result.reasons] == ["no_consent"]
    granted = face(subject=True, grants=(grant(),))
    passed = rule.result(Context(facts(granted), granted))
    assert passed is not None and passed.passed
    assert [r.code for r in passed.reasons] == ["consent_granted"]


def test_a_rule_reason_and_message_replace_the_predicates() -> None:
    rule = Rule.model_validate(
        {
            "id": "house-rule",
            "require": {"operation_in": ["relight"]},
            "reason": "scope_not_granted",
            "message": "relight only, please",
        }
    )
    result = rule.result(Context(facts(operation="sketch")))
    assert result is not None
    [reason] = result.reasons
    assert (reason.code, reason.message) == ("scope_not_granted", "relight only, please")
    assert reason.evidence == {"operation": "sketch", "policy_rule": "house-rule"}


def test_grant_scopes_include_asks_for_more_than_the_operation() -> None:
    rule = Rule.model_validate(
        {
            "id": "publication",
            "applies_to": "each_face",
            "when": {"face_kind": ["subject"]},
            "require": {"grant_scopes_include": ["publication"]},
            "reason": "scope_not_granted",
        }
    )
    plain = face(subject=True, grants=(grant(),))
    wider = face(subject=True, grants=(grant(scopes=("relight", "publication")),))
    assert rule.result(Context(facts(plain), plain)).passed is False  # type: ignore[union-attr]
    assert rule.result(Context(facts(wider), wider)).passed is True  # type: ignore[union-attr]


def test_a_rule_outside_its_stage_or_when_does_not_apply() -> None:
    rule = Rule.model_validate(
        {"id": "r", "stages": ["output"], "require": {"has_faces": True}, "reason": "no_consent"}
    )
    assert rule.result(Context(facts())) is None
    assert rule.result(Context(facts(stage="output"))) is not None
    decision = decide(DEFAULT, facts(face(subject=True, grants=(grant(),))))
    applied = [r.rule for r in decision.rules]
    assert "identity-held" not in applied and "no-unknown-faces" in applied


def test_face_readable_picks_out_faces_nobody_can_identify() -> None:
    from guard.identity import FaceFacts

    rule = Rule.model_validate(
        {
            "id": "no-covered-faces",
            "applies_to": "each_face",
            "forbid": {"face_readable": False},
            "reason": "no_consent",
            "message": "take the mask off",
        }
    )
    covered = FaceFacts(0, (0, 0, 10, 10), None, None, (), None, readable=False)
    failed = rule.result(Context(facts(covered), covered))
    assert failed is not None and not failed.passed
    assert failed.reasons[0].message == "take the mask off"
    seen = face()
    assert rule.result(Context(facts(seen), seen)).passed  # type: ignore[union-attr]
