"""Covered faces: dlib cannot read them, NudeNet's face net still sees them, and the gate
treats them as unknown faces instead of "no face" (guard/safety/unreadable.py)."""

from __future__ import annotations

import numpy as np
import pytest

from guard import CheckRequest, Guard
from guard.faces import Face
from guard.media import RGBImage, encode_image
from guard.policy import decide
from guard.safety import SeenFace, unread_faces
from guard.samples import SampleName, sample_rgb
from tests.support.guards import GuardFactory
from tests.support.policy_facts import DEFAULT, facts
from tests.support.registry import REQUESTER


def _covered(name: SampleName, guard: Guard, rows: tuple[float, float]) -> RGBImage:
    rgb = sample_rgb(name).copy()
    [face] = guard.face_engine.detect_and_embed(rgb)
    x0, y0, x1, y1 = face.bbox
    top, bottom = (y0 + int(f * (y1 - y0)) for f in rows)
    rgb[top:bottom, x0:x1] = 20
    return rgb


@pytest.mark.parametrize("name", ["tom_hanks", "astronaut"])
@pytest.mark.parametrize("rows", [(0.55, 1.0), (0.25, 0.5)], ids=["mouth", "eyes"])
def test_a_covered_face_is_an_unknown_face_not_no_face(
    make_guard: GuardFactory, name: SampleName, rows: tuple[float, float]
) -> None:
    guard = make_guard()
    covered = _covered(name, guard, rows)
    assert guard.face_engine.detect_and_embed(covered) == []  # dlib sees nothing
    decision = guard.check(
        CheckRequest(requester=REQUESTER, operation="relight", image=encode_image(covered))
    )
    assert not decision.allowed
    assert decision.reason_codes == ("no_consent", "unreadable_face")
    [face] = decision.faces
    assert face.kind == "unknown" and face.verdict.value == "deny"
    # With screening switched off, nothing sees it: the documented cost of that setting.
    blind = make_guard(nsfw_classifier="none")
    assert blind.check(
        CheckRequest(requester=REQUESTER, operation="relight", image=encode_image(covered))
    ).reason_codes == ("no_faces",)


def test_faces_both_detectors_see_count_once() -> None:
    read = [Face((100, 100, 200, 220), (), 1.0, np.ones(128, np.float32), "dlib")]
    # NudeNet's box for the same face is looser; a second face elsewhere is not read.
    same, elsewhere = SeenFace((90, 80, 215, 230), 0.6), SeenFace((400, 90, 480, 200), 0.6)
    assert unread_faces([same, elsewhere], read) == (elsewhere,)
    assert unread_faces([], read) == ()
    assert unread_faces([SeenFace((0, 0, 10, 10), 0.5)], []) == (SeenFace((0, 0, 10, 10), 0.5),)
    # Below NudeNet's face cut a detection only steers the identity engine's search.
    assert unread_faces([SeenFace((0, 0, 10, 10), 0.21)], []) == ()


def test_the_policy_sees_unreadable_faces_as_unknown() -> None:
    from guard.identity import FaceFacts

    unreadable = FaceFacts(0, (0, 0, 10, 10), None, None, (), None, readable=False)
    decision = decide(DEFAULT, facts(unreadable))
    assert decision.reason_codes == ("no_consent", "unreadable_face")
    assert [r.rule for r in decision.rules if not r.passed] == ["no-unknown-faces"]
