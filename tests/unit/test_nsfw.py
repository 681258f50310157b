"""NSFW screening: NudeNet's real detector on real photos, and the policy rule on scores."""

from __future__ import annotations

import sys

import pytest

from guard.errors import Unavailable
from guard.policy import decide
from guard.safety import NudeNetClassifier
from guard.samples import natural_photos, sample_rgb
from tests.support.policy_facts import DEFAULT, STRICT, face, facts, failed_rules, grant

POLICY = DEFAULT


@pytest.fixture(scope="module")
def nudenet() -> NudeNetClassifier:
    return NudeNetClassifier("cpu")


def test_explicit_free_photos_are_not_flagged(nudenet: NudeNetClassifier) -> None:
    photos = {"t1": sample_rgb("t1"), "tom_hanks": sample_rgb("tom_hanks"), **natural_photos()}
    for name, rgb in photos.items():
        scored = nudenet.score(rgb)
        assert scored.score < 0.3, (name, scored)  # under every shipped policy's threshold
        assert scored.labels == () and scored.classifier == "nudenet-3.4.2-320n"


def test_a_missing_classifier_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nudenet", None)
    with pytest.raises(Unavailable, match="GUARD_NSFW_CLASSIFIER"):
        NudeNetClassifier("cpu")


def test_sexual_content_with_any_real_face_is_denied_even_with_consent() -> None:
    consented = face(subject=True, grants=(grant(),))
    flagged = facts(consented, nsfw_score=0.91, nsfw_labels=("FEMALE_BREAST_EXPOSED",))
    decision = decide(POLICY, flagged)
    assert decision.reason_codes == ("consent_granted", "nsfw_real_person")
    assert not decision.allowed
    [reason] = [r for r in decision.reasons if r.code == "nsfw_real_person"]
    assert reason.evidence == {
        "nsfw_score": 0.91,
        "threshold": 0.5,
        "policy_rule": "no-sexual-content-of-real-people",
    }
    assert "FEMALE_BREAST_EXPOSED" in reason.message
    assert failed_rules(POLICY, flagged) == ["no-sexual-content-of-real-people"]


def test_no_face_low_score_or_a_policy_that_allows_it_is_not_this_denial() -> None:
    consented = face(subject=True, grants=(grant(),))
    assert "nsfw_real_person" not in decide(POLICY, facts(nsfw_score=0.99)).reason_codes
    assert decide(POLICY, facts(consented, nsfw_score=0.49)).allowed
    assert decide(POLICY, facts(consented, nsfw_score=None)).allowed  # screening off
    # The strict policy denies sexual content with or without a face, from a lower score.
    assert "nsfw_real_person" in decide(STRICT, facts(nsfw_score=0.35)).reason_codes
