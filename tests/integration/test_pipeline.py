"""The gate end to end on real photos, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from guard import CheckRequest, DecisionEvent, EditRequest, Guard, Result
from guard import errors as guard_errors
from guard.faces import Face, FaceEngine
from guard.identity import Blocklist
from guard.identity.models import ConsentGrantRow, FaceTemplateRow, SubjectRow
from guard.media import RGBImage, encode_image
from guard.policy import ReasonCode, Verdict
from guard.safety import NsfwScore
from guard.samples import TRANSFORMS, SampleName, sample_bytes, sample_rgb
from tests.support.blocklists import flip_index_byte, forget_blocklist
from tests.support.guards import GuardFactory
from tests.support.photos import ENROLL, PORTRAIT, crop
from tests.support.registry import (
    EVIDENCE,
    REQUESTER,
    blocklist_public_figures,
    confirm_by_the_person,
    enroll_model,
    link_to_figure,
)


@pytest.fixture
def guard(make_guard: GuardFactory) -> Guard:
    g = make_guard()
    blocklist_public_figures(g)
    return g


def check(guard: Guard, image: bytes, operation: str = "relight", prompt: str = "") -> object:
    return guard.check(
        CheckRequest(requester=REQUESTER, operation=operation, image=image, prompt=prompt)
    )


@pytest.mark.parametrize("sample", ["tom_hanks", "astronaut"])
@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_public_figures_denied_after_transforms(
    guard: Guard, sample: SampleName, transform: str
) -> None:
    image = encode_image(TRANSFORMS[transform](sample_rgb(sample)), "png")
    decision = guard.check(CheckRequest(requester=REQUESTER, operation="relight", image=image))
    assert decision.verdict is Verdict.DENY
    assert ReasonCode.PUBLIC_FIGURE in {r.code for r in decision.reasons}
    [face] = [f for f in decision.faces if f.reasons[0].code is ReasonCode.PUBLIC_FIGURE]
    expected = "tom-hanks" if sample == "tom_hanks" else "eileen-collins"
    assert face.reasons[0].evidence["figure_id"] == expected


def test_enrolled_subject_with_grant_is_allowed_and_edited(guard: Guard) -> None:
    enroll_model(guard)
    result = guard.edit(
        EditRequest(image=crop("t1", PORTRAIT), operation="background_blur", requester=REQUESTER)
    )
    assert result.input_decision.verdict is Verdict.ALLOW_WITH_CONDITIONS
    assert result.output_decision is not None
    assert result.output_decision.allowed
    codes = {r.code for r in result.output_decision.reasons}
    assert ReasonCode.IDENTITY_PRESERVED in codes
    assert result.image is not None and result.output_sha256 is not None
    assert guard.decode(result.image).rgb.shape == sample_rgb("t1")[150:886, 0:262].shape


def test_subject_matches_from_transformed_photo(guard: Guard) -> None:
    subject_id, _ = enroll_model(guard)
    portrait = sample_rgb("t1")[150:886, 0:262]
    for transform in TRANSFORMS.values():
        decision = guard.check(
            CheckRequest(
                requester=REQUESTER, operation="relight", image=encode_image(transform(portrait))
            )
        )
        assert decision.allowed
        assert decision.faces[0].reasons[0].evidence["subject_id"] == subject_id


def test_revoking_the_grant_turns_allow_into_deny(guard: Guard) -> None:
    _, grant_id = enroll_model(guard)
    image = crop("t1", PORTRAIT)
    assert check(guard, image).allowed  # type: ignore[attr-defined]
    guard.registry.revoke(grant_id)
    decision = check(guard, image)
    assert decision.verdict is Verdict.DENY  # type: ignore[attr-defined]
    assert decision.reason_codes == ("consent_revoked",)  # type: ignore[attr-defined]


def test_expired_grant_denies(guard: Guard) -> None:
    subject = guard.registry.create_subject("acme")
    guard.registry.enroll(subject.id, guard.faces_in(crop("t1", ENROLL)))
    guard.registry.grant(
        subject.id,
        grantee=REQUESTER,
        scopes=["relight"],
        evidence_sha256=EVIDENCE,
        not_before=datetime.now(UTC) - timedelta(days=10),
        expires_at=datetime.now(UTC) - timedelta(seconds=1),
    )
    assert check(guard, crop("t1", PORTRAIT)).reason_codes == ("consent_expired",)  # type: ignore[attr-defined]


def test_scope_and_grantee_are_enforced(guard: Guard) -> None:
    enroll_model(guard, scopes=("relight",))
    image = crop("t1", PORTRAIT)
    assert check(guard, image, operation="color_grade").reason_codes == ("scope_not_granted",)  # type: ignore[attr-defined]
    other = guard.check(CheckRequest(requester="someone/else", operation="relight", image=image))
    assert other.reason_codes == ("no_consent",)


def test_group_photo_explains_each_face(guard: Guard) -> None:
    subject_id, _ = enroll_model(guard)
    decision = check(guard, sample_bytes("t1"), operation="background_blur")
    assert decision.verdict is Verdict.DENY  # type: ignore[attr-defined]
    faces = decision.faces  # type: ignore[attr-defined]
    assert len(faces) == 6
    allowed = [f for f in faces if f.verdict is Verdict.ALLOW]
    assert [f.reasons[0].evidence["subject_id"] for f in allowed] == [subject_id]
    assert all(f.reasons[0].code is ReasonCode.NO_CONSENT for f in faces if f not in allowed)


def test_public_figure_who_enrolled_and_consented_is_allowed(guard: Guard) -> None:
    subject = guard.registry.create_subject("acme")
    link_to_figure(guard, subject.id, "tom-hanks")
    guard.registry.enroll(
        subject.id, guard.faces_in(encode_image(TRANSFORMS["jpeg50"](sample_rgb("tom_hanks"))))
    )
    grant = guard.registry.grant(
        subject.id, grantee=REQUESTER, scopes=["relight"], evidence_sha256=EVIDENCE
    )
    confirm_by_the_person(guard, grant.id)
    decision = check(guard, sample_bytes("tom_hanks"))
    assert decision.reason_codes == ("public_figure_own_consent",)  # type: ignore[attr-defined]
    [reason] = decision.faces[0].reasons  # type: ignore[attr-defined]
    assert reason.evidence["link"] == "operator"
    # A subject linked to another figure cannot take the astronaut's face.
    impostor = guard.registry.create_subject("acme")
    with pytest.raises(guard_errors.EnrollmentRefused) as refused:
        guard.registry.enroll(impostor.id, guard.faces_in(sample_bytes("astronaut")))
    assert refused.value.code == "enrollment_matches_public_figure"
    assert check(guard, sample_bytes("astronaut")).reason_codes == ("public_figure",)  # type: ignore[attr-defined]


def test_prompt_naming_a_public_figure_is_denied(guard: Guard) -> None:
    enroll_model(guard)
    decision = check(guard, crop("t1", PORTRAIT), prompt="make her look like TOM-HANKS")
    assert "prompt_names_public_figure" in decision.reason_codes  # type: ignore[attr-defined]
    assert decision.verdict is Verdict.DENY  # type: ignore[attr-defined]
    disguised = check(guard, crop("t1", PORTRAIT), prompt="make her look like t.0.m h@nk$")
    [reason] = [r for r in disguised.reasons if r.code == "prompt_names_public_figure"]  # type: ignore[attr-defined]
    # The figure's alias "Hanks" is found first, at the leetspeak level.
    assert reason.evidence == {
        "figure_id": "tom-hanks",
        "rule": "leetspeak",
        "span": "25:30",
        "matched": "h@nk$",
        "policy_rule": "prompt-names-no-public-figure",
    }
    assert "leetspeak match: 'h@nk$'" in reason.message


def test_overlong_prompts_are_invalid_input(guard: Guard) -> None:
    with pytest.raises(guard_errors.InvalidInput, match="GUARD_MAX_PROMPT_CHARS"):
        check(guard, crop("t1", PORTRAIT), prompt="x" * 10_001)


def test_erasure_removes_templates_from_database_and_index(guard: Guard) -> None:
    subject_id, _ = enroll_model(guard)
    template_ids = guard.registry.template_ids(subject_id)
    assert template_ids and set(template_ids) <= guard.registry.indexed_template_ids()
    erasure = guard.registry.erase(subject_id)
    assert erasure.templates_removed == len(template_ids) and erasure.grants_removed == 1
    assert subject_id not in erasure.subject_ref
    assert guard.registry.indexed_template_ids().isdisjoint(template_ids)
    with guard.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(FaceTemplateRow)) == 0
        assert session.scalar(select(func.count()).select_from(ConsentGrantRow)) == 0
        assert session.get(SubjectRow, subject_id) is None
    assert check(guard, crop("t1", PORTRAIT)).reason_codes == ("no_consent",)  # type: ignore[attr-defined]


def test_second_process_sees_enrollment_and_erasure(guard: Guard, make_guard: GuardFactory) -> None:
    other = make_guard()  # same database and data dir: another worker process's view
    image = crop("t1", PORTRAIT)
    assert check(other, image).reason_codes == ("no_consent",)  # type: ignore[attr-defined]
    subject_id, _ = enroll_model(guard)
    assert check(other, image).allowed  # type: ignore[attr-defined]
    guard.registry.erase(subject_id)
    assert check(other, image).reason_codes == ("no_consent",)  # type: ignore[attr-defined]


def test_no_face_is_allowed(guard: Guard) -> None:
    from skimage import data

    decision = check(guard, encode_image(data.coffee()))
    assert decision.allowed and decision.reason_codes == ("no_faces",)  # type: ignore[attr-defined]


# fail closed ----------------------------------------------------------------------------------


def _assert_unavailable(decision: object) -> None:
    assert decision.verdict is Verdict.DENY  # type: ignore[attr-defined]
    assert decision.reason_codes == ("unavailable",)  # type: ignore[attr-defined]


def test_corrupt_blocklist_denies_unavailable(guard: Guard, make_guard: GuardFactory) -> None:
    enroll_model(guard)
    image = crop("t1", PORTRAIT)
    assert check(guard, image).allowed  # type: ignore[attr-defined]
    flip_index_byte(guard.db)
    # A generation is verified when a process loads it: a guard starting now (another host,
    # a restart) reads the damaged row and denies.
    restarted = make_guard()
    _assert_unavailable(check(restarted, image))
    result = restarted.edit(EditRequest(image=image, operation="relight", requester=REQUESTER))
    assert result.image is None
    _assert_unavailable(result.decision)


def test_missing_blocklist_denies_unavailable(guard: Guard) -> None:
    enroll_model(guard)
    guard.blocklists.poll_s = 0.0  # the next decision asks the database
    forget_blocklist(guard.db)
    _assert_unavailable(check(guard, crop("t1", PORTRAIT)))


def test_blocklist_of_another_engine_denies_unavailable(guard: Guard) -> None:

    guard.blocklists.replace(Blocklist.empty("arcface", 512))
    _assert_unavailable(check(guard, crop("t1", PORTRAIT)))


def test_unreadable_policy_denies_unavailable(make_guard: GuardFactory, tmp_path: object) -> None:
    from pathlib import Path

    policy = Path(str(tmp_path)) / "broken.yaml"
    policy.write_text("id: broken\noperations: [relight\n")  # unterminated list
    guard = make_guard(policy_file=policy)
    enroll_model(guard)
    _assert_unavailable(check(guard, crop("t1", PORTRAIT)))
    policy.write_text("id: x\nversion: '1'\noperations: [relight]\nunknown_rule: true\n")
    _assert_unavailable(check(guard, crop("t1", PORTRAIT)))
    policy.unlink()
    _assert_unavailable(check(guard, crop("t1", PORTRAIT)))


def test_unreachable_database_fails_closed(tmp_path: object, face_engine: FaceEngine) -> None:
    """The gate denies (registry unreadable), and since not even that denial can be audited,
    the request fails with Unavailable (503) instead of answering."""
    from pathlib import Path

    from guard.bootstrap import initialise
    from guard.config import Settings

    data_dir = Path(str(tmp_path)) / "var"
    initialise(Settings(data_dir=data_dir), face_engine)  # keys and blocklist exist
    settings = Settings(
        data_dir=data_dir, database_url="postgresql+psycopg://postgres@127.0.0.1:1/none"
    )
    from guard.errors import Unavailable

    guard = Guard(settings, face_engine=face_engine)
    with pytest.raises(Unavailable, match="database is unavailable"):
        check(guard, crop("t1", PORTRAIT))
    with pytest.raises(Unavailable, match="database is unavailable"):
        guard.edit(
            EditRequest(image=crop("t1", PORTRAIT), operation="relight", requester=REQUESTER)
        )


def test_missing_template_key_denies_unavailable(guard: Guard) -> None:
    enroll_model(guard)
    fresh = Guard(guard.settings, face_engine=guard.face_engine)
    (guard.settings.keys_dir / "template.key").unlink()
    _assert_unavailable(check(fresh, crop("t1", PORTRAIT)))


class FacePaster:
    """An "editor" that pastes another face over the first detected face."""

    name, version = "paster", "0"
    operations = frozenset({"relight"})

    def __init__(self, replacement: RGBImage) -> None:
        self.replacement = replacement

    def describe(self, operation, params, prompt):  # type: ignore[no-untyped-def]
        return {}

    def edit(self, rgb, faces: list[Face], operation, params, **_):  # type: ignore[no-untyped-def]
        import cv2

        out = rgb.copy()
        x0, y0, x1, y1 = faces[0].bbox
        pad = (x1 - x0) // 3
        y0, x0 = max(0, y0 - pad), max(0, x0 - pad)
        y1, x1 = min(out.shape[0], y1 + pad), min(out.shape[1], x1 + pad)
        out[y0:y1, x0:x1] = cv2.resize(self.replacement, (x1 - x0, y1 - y0))
        return out


def _pasted_edit(guard: Guard, replacement: RGBImage) -> Result:
    enroll_model(guard)
    paster = Guard(guard.settings, face_engine=guard.face_engine, editor=FacePaster(replacement))
    return paster.edit(
        EditRequest(image=crop("t1", PORTRAIT), operation="relight", requester=REQUESTER)
    )


def test_identity_drift_in_output_is_denied(guard: Guard) -> None:
    """An editor that swaps the face for a public figure's is caught by the output scan."""
    result = _pasted_edit(guard, sample_rgb("tom_hanks"))
    assert result.input_decision.allowed
    assert result.image is None
    codes = set(result.decision.reason_codes)
    assert "identity_drift" in codes and "output_public_figure" in codes


def test_face_replaced_by_another_person_from_the_group_photo_is_drift(guard: Guard) -> None:
    """The consented model's face replaced by a stranger's from t1.jpg: the model drifted,
    the stranger is a face from nowhere without consent."""
    stranger = sample_rgb("t1")[150:290, 250:380]  # the second person from the left
    result = _pasted_edit(guard, stranger)
    assert result.input_decision.allowed
    assert result.image is None
    codes = set(result.decision.reason_codes)
    assert {"identity_drift", "new_face_in_output", "no_consent"} <= codes
    [drift] = [r for r in result.decision.reasons if r.code == "identity_drift"]
    assert float(drift.evidence["similarity"]) < float(drift.evidence["threshold"])  # type: ignore[arg-type]


class FixedNsfw:
    """A classifier seam: returns the given scores, one per call."""

    name = "fixed"

    def __init__(self, *scores: float) -> None:
        self.scores = list(scores)

    def score(self, rgb: RGBImage) -> NsfwScore:
        return NsfwScore(self.scores.pop(0), ("BUTTOCKS_EXPOSED",), self.name)


def test_sexual_content_of_a_consented_person_is_denied_on_input_and_output(guard: Guard) -> None:
    enroll_model(guard)
    request = EditRequest(image=crop("t1", PORTRAIT), operation="relight", requester=REQUESTER)
    flagged_input = Guard(guard.settings, face_engine=guard.face_engine, nsfw=FixedNsfw(0.9))
    result = flagged_input.edit(request)
    assert "nsfw_real_person" in result.input_decision.reason_codes
    assert result.image is None and result.output_decision is None
    flagged_output = Guard(guard.settings, face_engine=guard.face_engine, nsfw=FixedNsfw(0.1, 0.95))
    result = flagged_output.edit(request)
    assert result.input_decision.allowed
    assert "nsfw_real_person" in result.decision.reason_codes
    assert result.image is None


def test_nsfw_screening_can_be_switched_off_and_fails_closed_when_missing(
    guard: Guard, monkeypatch: pytest.MonkeyPatch
) -> None:
    enroll_model(guard)
    request = EditRequest(image=crop("t1", PORTRAIT), operation="relight", requester=REQUESTER)
    switched_off = Guard(
        guard.settings.model_copy(update={"nsfw_classifier": "none"}),
        face_engine=guard.face_engine,
        nsfw=FixedNsfw(0.99),
    )
    assert switched_off.check(
        CheckRequest(requester=REQUESTER, operation="relight", image=request.image)
    ).allowed
    monkeypatch.setitem(__import__("sys").modules, "nudenet", None)
    missing = Guard(guard.settings, face_engine=guard.face_engine)
    decision = missing.check(
        CheckRequest(requester=REQUESTER, operation="relight", image=request.image)
    )
    assert decision.reason_codes == ("unavailable",)
    assert "GUARD_NSFW_CLASSIFIER" in decision.reasons[0].message


# seams and bad input ----------------------------------------------------------------------------


class RecordingSink:
    def __init__(self) -> None:
        self.events: list[DecisionEvent] = []

    def record(self, event: DecisionEvent) -> None:
        self.events.append(event)


def test_every_decision_reaches_the_sinks_with_its_provenance(guard: Guard) -> None:
    enroll_model(guard)
    sink = RecordingSink()
    seamed = Guard(guard.settings, face_engine=guard.face_engine, sinks=[sink])
    portrait = crop("t1", PORTRAIT)
    result = seamed.edit(EditRequest(image=portrait, operation="relight", requester=REQUESTER))
    assert result.image is not None and result.provenance is not None
    assert [e.decision.stage for e in sink.events] == ["input", "output"]
    assert sink.events[1].output_sha256 == result.output_sha256 == result.provenance.sha256
    assert sink.events[1].watermark_record_id == result.provenance.record_id
    assert sink.events[1].manifest_label == result.provenance.manifest_label
    assert all(e.input_sha256 == result.input_sha256 for e in sink.events)
    seamed.check(
        CheckRequest(requester=REQUESTER, operation="relight", image=sample_bytes("tom_hanks"))
    )
    assert sink.events[-1].decision.reason_codes == ("public_figure",)
    assert "embedding" not in repr(sink.events)


@pytest.mark.parametrize(
    "image",
    [b"", sample_bytes("t1")[:5000], b"GIF89a" + b"\0" * 20, b"plain text"],
    ids=["empty", "truncated-jpeg", "broken-gif", "text"],
)
def test_bad_input_raises_and_changes_nothing(guard: Guard, image: bytes) -> None:
    from guard.errors import InvalidInput

    enroll_model(guard)
    sink = RecordingSink()
    seamed = Guard(guard.settings, face_engine=guard.face_engine, sinks=[sink])
    with pytest.raises(InvalidInput):
        seamed.edit(EditRequest(image=image, operation="relight", requester=REQUESTER))
    with pytest.raises(InvalidInput):
        seamed.check(CheckRequest(requester=REQUESTER, operation="relight", image=image))
    with pytest.raises(InvalidInput):
        seamed.edit(
            EditRequest(image=crop("t1", PORTRAIT), operation="face_swap", requester=REQUESTER)
        )
    with pytest.raises(InvalidInput):
        seamed.check(CheckRequest(requester=" ", operation="relight", image=crop("t1", PORTRAIT)))
    assert sink.events == []
    with guard.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(FaceTemplateRow)) == 1
        assert session.scalar(select(func.count()).select_from(ConsentGrantRow)) == 1
