"""One test per rule of the default policy (policies/default.yaml), and the policy file's
validation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guard.config import DEFAULT_POLICY_FILE
from guard.errors import Unavailable
from guard.identity import ConsentGrant
from guard.policy import DriftFact, PromptSubject, ReasonCode, Verdict, decide, load_policy
from tests.support.policy_facts import DEFAULT, NOW, codes, face, facts, failed_rules, grant

POLICY = DEFAULT


def test_default_policy_loads_with_version() -> None:
    assert POLICY.id == "default" and POLICY.version


def test_no_face_is_allowed() -> None:
    decision = decide(POLICY, facts())
    assert decision.allowed and decision.reason_codes == ("no_faces",)


def test_active_grant_in_scope_allows_with_conditions() -> None:
    decision = decide(POLICY, facts(face(subject=True, grants=(grant(),))))
    assert decision.verdict is Verdict.ALLOW_WITH_CONDITIONS
    assert decision.conditions == ("watermark_required",)
    assert decision.faces[0].reasons[0].evidence["grant_id"] == "grt_1"


@pytest.mark.parametrize(
    ("the_grant", "expected"),
    [
        (grant(scopes=("color_grade",)), "scope_not_granted"),
        (grant(revoked_at=NOW - timedelta(seconds=1)), "consent_revoked"),
        (grant(expires_at=NOW), "consent_expired"),
        (grant(not_before=NOW + timedelta(hours=1)), "consent_not_yet_valid"),
    ],
)
def test_grant_problems_deny_with_the_specific_reason(
    the_grant: ConsentGrant, expected: str
) -> None:
    decision = decide(POLICY, facts(face(subject=True, grants=(the_grant,))))
    assert decision.verdict is Verdict.DENY and decision.reason_codes == (expected,)
    assert decision.conditions == ()


def test_revocation_wins_over_validity_window() -> None:
    revoked_future = grant(
        revoked_at=NOW - timedelta(seconds=1), not_before=NOW + timedelta(days=1)
    )
    assert codes(POLICY, facts(face(subject=True, grants=(revoked_future,)))) == (
        "consent_revoked",
    )


def test_revocation_in_the_future_is_not_yet_effective() -> None:
    assert decide(
        POLICY, facts(face(subject=True, grants=(grant(revoked_at=NOW + timedelta(hours=1)),)))
    ).allowed


def test_subject_without_grant_is_no_consent() -> None:
    assert codes(POLICY, facts(face(subject=True))) == ("no_consent",)


def test_no_unknown_faces() -> None:
    decision = decide(POLICY, facts(face()))
    assert decision.reason_codes == ("no_consent",)
    assert failed_rules(POLICY, facts(face())) == ["no-unknown-faces"]
    assert decision.reasons[0].evidence == {"face_index": 0, "policy_rule": "no-unknown-faces"}


def test_public_figure_denied_even_with_a_grant_when_not_linked() -> None:
    decision = decide(POLICY, facts(face(subject=True, figure=True, grants=(grant(),))))
    assert decision.reason_codes == ("public_figure",)


def test_public_figure_linked_subject_with_grant_is_allowed() -> None:
    the_face = face(subject=True, figure=True, grants=(grant(),), linked_figure="fig")
    assert codes(POLICY, facts(the_face)) == ("public_figure_own_consent",)


def test_public_figure_linked_but_grant_expired_is_denied() -> None:
    the_face = face(subject=True, figure=True, grants=(grant(expires_at=NOW),), linked_figure="fig")
    assert codes(POLICY, facts(the_face)) == ("public_figure",)


def test_any_denied_face_denies_the_request_and_each_face_is_explained() -> None:
    decision = decide(POLICY, facts(face(subject=True, grants=(grant(),)), face(index=1)))
    assert decision.verdict is Verdict.DENY
    assert [f.verdict for f in decision.faces] == [Verdict.ALLOW, Verdict.DENY]
    assert [f.face_index for f in decision.faces] == [0, 1]


def test_permitted_operations() -> None:
    assert "operation_not_permitted" in codes(POLICY, facts(operation="face_swap"))
    assert failed_rules(POLICY, facts(operation="face_swap")) == ["permitted-operations"]
    assert decide(POLICY, facts(operation="sketch")).allowed


def test_prompt_names_no_public_figure() -> None:
    mention = {"rule": "leetspeak", "span": "3:12", "matched": "t0m h4nks"}
    decision = decide(POLICY, facts(prompt_figures=("fig",), prompt_mentions={"fig": mention}))
    assert decision.reason_codes == ("prompt_names_public_figure", "no_faces")
    assert decision.reasons[0].evidence == {
        "figure_id": "fig",
        **mention,
        "policy_rule": "prompt-names-no-public-figure",
    }
    assert "leetspeak match: 't0m h4nks'" in decision.reasons[0].message
    assert failed_rules(POLICY, facts(prompt_figures=("fig",))) == ["prompt-names-no-public-figure"]


def test_prompt_named_subjects_need_consent() -> None:
    mention = {"rule": "exact", "span": "0:8", "matched": "Jane Doe"}
    unconsented = facts(prompt_subjects=(PromptSubject("sub_9", (), mention),))
    decision = decide(POLICY, unconsented)
    assert decision.reason_codes == ("no_consent", "no_faces")
    assert decision.reasons[0].message.startswith("named in the prompt (exact match: 'Jane Doe')")
    assert decision.reasons[0].evidence["subject_id"] == "sub_9"
    assert failed_rules(POLICY, unconsented) == ["prompt-named-subjects-need-consent"]
    consented = facts(
        prompt_subjects=(PromptSubject("sub_9", (grant(subject_id="sub_9"),), mention),)
    )
    assert decide(POLICY, consented).reason_codes == ("consent_granted", "no_faces")
    revoked = grant(subject_id="sub_9", revoked_at=NOW - timedelta(minutes=1))
    assert (
        codes(POLICY, facts(prompt_subjects=(PromptSubject("sub_9", (revoked,), mention),)))[0]
        == "consent_revoked"
    )


def test_output_stage_uses_output_codes_and_drift() -> None:
    assert codes(POLICY, facts(face(figure=True), stage="output")) == ("output_public_figure",)
    drifted = facts(
        face(subject=True, grants=(grant(),)), stage="output", drift=(DriftFact(0, 0, 0.5, 0.93),)
    )
    assert decide(POLICY, drifted).reason_codes == ("consent_granted", "identity_drift")
    assert failed_rules(POLICY, drifted) == ["identity-held"]
    # A sketch redraws the face: it is not identity-preserving, so drift is not asked of it.
    sketched = facts(
        face(subject=True, grants=(grant(scopes=("sketch",)),)),
        operation="sketch",
        stage="output",
        drift=(DriftFact(0, 0, 0.2, 0.93),),
    )
    assert decide(POLICY, sketched).allowed
    kept = facts(
        face(subject=True, grants=(grant(),)), stage="output", drift=(DriftFact(0, 0, 0.99, 0.93),)
    )
    decision = decide(POLICY, kept)
    assert decision.allowed and "identity_preserved" in decision.reason_codes


def test_every_deny_names_a_stable_code() -> None:
    decision = decide(POLICY, facts(face(), face(figure=True, index=1), prompt_figures=("fig",)))
    assert all(r.code in ReasonCode for r in decision.reasons)
    assert decision.to_dict()["verdict"] == "deny"


@pytest.mark.parametrize(
    "content",
    [
        "",
        "- just\n- a list\n",
        "id: x\nversion: '1'\n",
        "id: x\nversion: '1'\nrules: [{id: a, require: {has_faces: true}}]\nextra: 1\n",
        ":\n\t- bad",
    ],
)
def test_invalid_policy_files_are_unavailable(tmp_path: Path, content: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(content)
    with pytest.raises(Unavailable, match="GUARD_POLICY_FILE"):
        load_policy(path)


def test_missing_policy_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable):
        load_policy(tmp_path / "absent.yaml")


GRANTS = st.sampled_from(
    [
        grant(),
        grant(scopes=("color_grade",)),
        grant(revoked_at=NOW - timedelta(seconds=1)),
        grant(expires_at=NOW),
        grant(not_before=NOW + timedelta(hours=1)),
    ]
)
FACES = st.builds(
    lambda subject, figure, grants, linked: (subject, figure, tuple(grants), linked),
    st.booleans(),
    st.booleans(),
    st.lists(GRANTS, max_size=3),
    st.sampled_from([None, "fig", "other"]),
)


@given(st.lists(FACES, max_size=6), st.sampled_from(["relight", "face_swap"]), st.booleans())
def test_verdict_is_deny_exactly_when_some_reason_denies(
    faces: list[tuple[bool, bool, tuple[ConsentGrant, ...], str | None]],
    operation: str,
    names_figure: bool,
) -> None:
    request = facts(
        *(
            face(subject=s, figure=f, grants=g, linked_figure=linked, index=i)
            for i, (s, f, g, linked) in enumerate(faces)
        ),
        operation=operation,
        prompt_figures=("fig",) if names_figure else (),
    )
    decision = decide(POLICY, request)
    assert len(decision.faces) == len(faces)
    assert (decision.verdict is Verdict.DENY) == any(r.denies for r in decision.reasons)
    if decision.allowed:
        assert all(f.verdict is Verdict.ALLOW for f in decision.faces)
        assert operation == "relight" and not names_figure
    for face_decision, (subject, figure, grants, linked) in zip(decision.faces, faces, strict=True):
        if face_decision.verdict is Verdict.ALLOW:
            # Allowed faces are never unknown and always rest on an active grant in scope.
            assert subject
            assert any(g.status_at(NOW).value == "active" and "relight" in g.scopes for g in grants)
            assert not figure or linked == "fig"


def test_policy_problems_point_at_their_yaml_lines() -> None:
    from guard.policy import policy_problems

    text = (
        'id: broken\nversion: "1"\nrules:\n'
        "  - id: a\n    require: {operation_in: []}\n"
        "  - id: b\n    applies_to: each_face\n    require:\n      all_of:\n"
        "        - {face_kind: [robot]}\n        - {consent_granted: true}\n"
        "  - id: c\n    forbid: {face_kind: [unknown]}\n"
        "  - id: d\n    require: {opration_in: [relight]}\n"
        "monitoring:\n  window_seconds: 5\n"
    )
    policy, problems = policy_problems(text)
    assert policy is None
    assert [(p.line, p.location) for p in problems] == [
        (5, "rules.0.require.operation_in"),
        (10, "rules.1.require.all_of.0.face_kind.0"),
        (12, "rules.2"),
        (15, "rules.3.require"),
        (17, "monitoring.window_seconds"),
    ]
    assert "looks at a face" in problems[2].message
    assert "one of: all_of, any_of, not" in problems[3].message
    assert str(problems[0]).startswith("line 5: rules.0.require.operation_in: ")
    assert policy_problems("id: [\n")[1][0].message.startswith("not valid YAML")
    assert policy_problems("- a list\n")[1][0].message.startswith("a policy is a YAML mapping")
    missing, problems = policy_problems('id: x\nversion: "1"\n')
    assert missing is None and [(p.line, p.location) for p in problems] == [(1, "rules")]
    assert policy_problems(DEFAULT_POLICY_FILE.read_text())[0] == POLICY


def test_an_invalid_policy_file_is_unavailable_with_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text('id: x\nversion: "1"\nrules:\n  - id: a\n    require: {stage: sideways}\n')
    with pytest.raises(Unavailable, match=r"line 5: rules.0.require.stage"):
        load_policy(path)
