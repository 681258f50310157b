"""The shipped policies (policies/) and prompt screening of enrolled names, through the
whole pipeline on real photos, on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest

from guard import CheckRequest, EditRequest, Guard
from guard.config import POLICIES_DIR
from guard.provenance import read_manifest
from guard.samples import sample_bytes, sample_rgb
from tests.support.guards import GuardFactory
from tests.support.photos import PORTRAIT, crop
from tests.support.registry import (
    EVIDENCE,
    REQUESTER,
    blocklist_public_figures,
    confirm_by_the_person,
    enroll_model,
    link_to_figure,
)


def _guard(make_guard: GuardFactory, policy: str) -> Guard:
    guard = make_guard(policy_file=POLICIES_DIR / f"{policy}.yaml")
    blocklist_public_figures(guard)
    return guard


@pytest.fixture
def guard(make_guard: GuardFactory) -> Guard:
    return _guard(make_guard, "default")


def _enroll_hanks_himself(guard: Guard, scopes: tuple[str, ...], *, confirmed: bool = True) -> str:
    """Tom Hanks enrolled as a subject linked to his blocklist entry, granting ``scopes``
    (confirmed by him unless ``confirmed`` is false): the grant id."""
    subject = guard.registry.create_subject("acme", display_name="Tom Hanks")
    link_to_figure(guard, subject.id, "tom-hanks")
    guard.registry.enroll(subject.id, guard.faces_in(sample_bytes("tom_hanks")))
    grant = guard.registry.grant(
        subject.id, grantee=REQUESTER, scopes=scopes, evidence_sha256=EVIDENCE
    )
    if confirmed:
        confirm_by_the_person(guard, grant.id)
    return grant.id


def test_newsroom_shows_public_figures_only_as_labelled_sketches(
    make_guard: GuardFactory,
) -> None:
    guard = _guard(make_guard, "newsroom")
    photo = sample_bytes("tom_hanks")
    relit = guard.edit(EditRequest(image=photo, operation="relight", requester=REQUESTER))
    assert relit.image is None and relit.decision.reason_codes == ("public_figure",)

    sketch = guard.edit(EditRequest(image=photo, operation="sketch", requester=REQUESTER))
    assert sketch.image is not None, sketch.decision.reasons
    assert sketch.input_decision.conditions == ("watermark_required", "visible_label")
    assert sketch.decision.conditions == ("watermark_required", "visible_label")
    # The label is in the pixels: a dark caption bar across the bottom of the pencil drawing,
    # the rest of it as drawn (up to the watermark).
    out = guard.decode(sketch.image).rgb.astype(np.float32)
    drawn = guard.editor.edit(guard.decode(photo).rgb, [], "sketch", {}).astype(np.float32)
    bar = max(12, round(out.shape[0] * 0.05))
    assert out[-bar:].mean() < 0.7 * drawn[-bar:].mean()
    assert np.abs(out[:-bar] - drawn[:-bar]).mean() < 4.0
    reading = read_manifest(sketch.image, "image/png")
    assert reading.guard_assertion is not None
    assert "visible_label" in reading.guard_assertion["conditions"]
    assert guard.verify(sketch.image).outcome.value == "valid"


def test_newsroom_prompt_naming_a_figure_only_for_an_illustration(
    make_guard: GuardFactory,
) -> None:
    guard = _guard(make_guard, "newsroom")
    for operation, allowed in (("generate", False), ("sketch", True)):
        decision = guard.check(
            CheckRequest(requester=REQUESTER, operation=operation, prompt="T0m H4nks at a desk")
        )
        assert decision.allowed is allowed, decision.reasons
    assert "visible_label" in decision.conditions


def test_strict_denies_a_public_figure_even_with_own_consent(make_guard: GuardFactory) -> None:
    default, strict = _guard(make_guard, "default"), _guard(make_guard, "strict")
    grant_id = _enroll_hanks_himself(default, ("relight",), confirmed=False)
    request = CheckRequest(
        requester=REQUESTER, operation="relight", image=sample_bytes("tom_hanks")
    )
    # An integrator's word is not enough for a public figure: the figure confirms it.
    attested = default.check(request)
    assert not attested.allowed and "consent_not_confirmed" in attested.reason_codes
    assert [r.rule for r in attested.rules if not r.passed] == [
        "public-figures-confirm-their-own-consent"
    ]
    confirm_by_the_person(default, grant_id)
    allowed = default.check(request)
    assert allowed.reason_codes == ("public_figure_own_consent",)
    assert allowed.faces[0].reasons[0].evidence["consent_level"] == "person_confirmed"
    # Same database, same grant: the strict policy never allows a public figure.
    assert strict.check(request).reason_codes == ("public_figure",)
    assert [r.rule for r in strict.check(request).rules if not r.passed] == ["no-public-figures"]


def test_strict_allows_a_consented_private_subject(make_guard: GuardFactory) -> None:
    guard = _guard(make_guard, "strict")
    _, grant_id = enroll_model(guard)
    attested = guard.check(
        CheckRequest(requester=REQUESTER, operation="relight", image=crop("t1", PORTRAIT))
    )
    assert not attested.allowed and "consent_not_confirmed" in attested.reason_codes
    confirm_by_the_person(guard, grant_id)
    result = guard.edit(
        EditRequest(image=crop("t1", PORTRAIT), operation="relight", requester=REQUESTER)
    )
    assert result.image is not None and result.decision.allowed
    assert "identity_preserved" in result.decision.reason_codes


def test_a_prompt_naming_an_enrolled_subject_needs_their_consent(guard: Guard) -> None:
    subject_id, _ = enroll_model(guard)  # "Model A", grants relight to REQUESTER
    unrelated = guard.registry.create_subject("acme", display_name="Jane Doe")

    def check(prompt: str, requester: str = REQUESTER, operation: str = "relight") -> object:
        return guard.check(CheckRequest(requester=requester, operation=operation, prompt=prompt))

    named = check("a portrait of J4ne  D0e in the rain")
    assert named.reason_codes == ("no_consent", "no_faces")  # type: ignore[attr-defined]
    [reason] = named.reasons[:1]  # type: ignore[attr-defined]
    assert reason.evidence["subject_id"] == unrelated.id and reason.evidence["rule"] == "leetspeak"
    assert reason.message.startswith("named in the prompt")
    # Consented for relight, not for color_grade.
    assert check("model a, golden hour").allowed  # type: ignore[attr-defined]
    assert check("model a, golden hour", operation="color_grade").reason_codes[0] == (  # type: ignore[attr-defined]
        "scope_not_granted"
    )
    # Another tenant's prompt is not screened against this tenant's names.
    assert check("a portrait of Jane Doe", requester="globex/app").allowed  # type: ignore[attr-defined]
    # A new subject's name is screened from the next request on.
    guard.registry.create_subject("acme", display_name="Rafael Núñez")
    assert not check("rafael nunez waving").allowed  # type: ignore[attr-defined]
    assert subject_id


def test_the_sketch_operation_redraws_faces(guard: Guard) -> None:
    portrait = crop("t1", PORTRAIT)
    faces = guard.faces_in(portrait)
    sketched = guard.editor.edit(guard.decode(portrait).rgb, faces, "sketch", {})
    original = sample_rgb("t1")[150:886, 0:262]
    assert sketched.shape == original.shape and sketched.dtype == np.uint8
    # Grey everywhere (a pencil drawing), faces included.
    assert np.array_equal(sketched[:, :, 0], sketched[:, :, 1])
    x0, y0, x1, y1 = faces[0].bbox
    assert not np.array_equal(sketched[y0:y1, x0:x1], original[y0:y1, x0:x1])
