"""Token buckets and usage-monitoring rules, without a server."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from guard.api.limits import LocalLimits
from guard.policy import Decision, FaceDecision, MonitoringRules, Reason, ReasonCode, Verdict
from guard.safety import UsageMonitor
from guard.secrets import KeyedHasher


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(0.1, 100),
    burst=st.integers(1, 50),
    gaps=st.lists(st.floats(0, 5), min_size=1, max_size=200),
)
def test_bucket_never_allows_more_than_burst_plus_refill(
    rate: float, burst: int, gaps: list[float]
) -> None:
    clock = FakeClock()
    limits = LocalLimits(clock)
    allowed = 0
    for gap in gaps:
        clock.now += gap
        wait = limits.take("k", rate=rate, burst=burst)
        if wait == 0:
            allowed += 1
        else:
            assert 0 < wait <= 1 / rate + 1e-9
    assert allowed <= burst + rate * clock.now + 1e-6


def test_bucket_refills_after_the_wait_it_announced() -> None:
    clock = FakeClock()
    limits = LocalLimits(clock)
    assert [limits.take("k", rate=2, burst=2) for _ in range(2)] == [0, 0]
    wait = limits.take("k", rate=2, burst=2)
    assert wait == 0.5
    clock.now += wait
    assert limits.take("k", rate=2, burst=2) == 0
    assert limits.take("other", rate=2, burst=2) == 0  # each key has its own bucket


def test_counters_expire_with_their_window() -> None:
    clock = FakeClock()
    limits = LocalLimits(clock)
    assert [limits.increment("c", 10) for _ in range(3)] == [1, 2, 3]
    assert [limits.add_distinct("s", m, 10) for m in "aab"] == [1, 1, 2]
    clock.now = 10.0
    assert limits.increment("c", 10) == 1
    assert limits.add_distinct("s", "a", 10) == 1


def _face(
    index: int, code: ReasonCode, near_miss: str | None = None, **evidence: str
) -> FaceDecision:
    verdict = Verdict.DENY if code is not ReasonCode.CONSENT_GRANTED else Verdict.ALLOW
    return FaceDecision(
        index, (0, 0, 10, 10), "unknown", verdict, (Reason(code, "", dict(evidence)),), near_miss
    )


def _decision(*faces: FaceDecision) -> Decision:
    denied = any(f.verdict is Verdict.DENY for f in faces)
    return Decision(
        Verdict.DENY if denied else Verdict.ALLOW,
        tuple(r for f in faces for r in f.reasons),
        "p",
        "1",
        "input",
        faces,
    )


RULES = MonitoringRules(
    window_seconds=60, max_edits_per_identity=2, max_denials=3, max_near_miss_figures=2
)


def _monitor() -> tuple[UsageMonitor, FakeClock]:
    clock = FakeClock()
    return UsageMonitor(LocalLimits(clock), KeyedHasher(b"k" * 32)), clock


def test_edits_of_one_identity_alert_once_per_window_without_naming_the_subject() -> None:
    monitor, _ = _monitor()
    allowed = _decision(_face(0, ReasonCode.CONSENT_GRANTED, subject_id="sub_alice"))
    alerts = [monitor.observe("key1", allowed, RULES, now=t) for t in range(5)]
    assert [len(a) for a in alerts] == [0, 0, 1, 0, 0]
    assert alerts[2][0].rule == "edits_per_identity"
    assert "sub_alice" not in alerts[2][0].detail
    assert monitor.observe("key2", allowed, RULES, now=5) == []  # per key
    assert [a.rule for a in monitor.observe("key1", allowed, RULES, now=61)] == []  # new window


def test_denials_alert_past_the_limit() -> None:
    monitor, _ = _monitor()
    denied = _decision(_face(0, ReasonCode.NO_CONSENT))
    rules = [[a.rule for a in monitor.observe("k", denied, RULES, now=1)] for _ in range(5)]
    assert rules == [[], [], [], ["denials"], []]


def test_distinct_near_misses_alert_repeats_do_not() -> None:
    monitor, _ = _monitor()
    seen = []
    for figure in ["tom-hanks", "tom-hanks", "tom-hanks", "eileen-collins", "barack-obama"]:
        decision = _decision(_face(0, ReasonCode.NO_CONSENT, near_miss=figure))
        seen.append(
            [
                a.rule
                for a in monitor.observe(
                    "k", decision, RULES.model_copy(update={"max_denials": 99}), now=1
                )
            ]
        )
    assert seen == [[], [], [], [], ["near_miss_figures"]]
