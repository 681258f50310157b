"""Usage monitoring: spot suspicious bulk use of one person's likeness by one API key.

The rules come from the policy's ``monitoring`` section. Counts are kept per key in fixed
windows (``window_seconds``) by a :class:`UsageCounters` backend (Redis shared by all workers,
or in-process); an alert is raised once, when a count first crosses its limit in a window:

- ``edits_per_identity``: requests by the key whose faces matched one identified person
  (enrolled subject or public figure) more than ``max_edits_per_identity`` times;
- ``denials``: more than ``max_denials`` denied decisions;
- ``near_miss_figures``: faces that came close to more than ``max_near_miss_figures``
  distinct public figures without matching (someone probing the blocklist's threshold).

Alerts name identities only by keyed hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from guard.policy import Decision, MonitoringRules
from guard.secrets import KeyedHasher


class UsageCounters(Protocol):
    def increment(self, name: str, ttl_seconds: int) -> int:
        """Add one to counter ``name`` (created with the given lifetime); the new count."""
        ...

    def add_distinct(self, name: str, member: str, ttl_seconds: int) -> int:
        """Add ``member`` to set ``name``; the set's size afterwards."""
        ...


@dataclass(frozen=True)
class UsageAlert:
    rule: str
    detail: str
    window_start: int
    """Unix time the window began: one alert per key, rule and window."""


def _identities(decision: Decision) -> set[str]:
    found = set()
    for face in decision.faces:
        for reason in face.reasons:
            for key in ("subject_id", "figure_id"):
                value = reason.evidence.get(key)
                if value is not None:
                    found.add(f"{key}:{value}")
    return found


class UsageMonitor:
    def __init__(self, counters: UsageCounters, hasher: KeyedHasher) -> None:
        self._counters = counters
        self._hasher = hasher

    def observe(
        self, key_id: str, decision: Decision, rules: MonitoringRules, *, now: float
    ) -> list[UsageAlert]:
        """Count one decision made for ``key_id``; the alerts it triggers (usually none)."""
        window = rules.window_seconds
        start = int(now // window) * window
        prefix = f"usage:{key_id}:{start}"
        alerts = []
        for identity in sorted(_identities(decision)):
            ref = self._hasher.ref("identity", identity)
            count = self._counters.increment(f"{prefix}:identity:{ref}", window)
            if count == rules.max_edits_per_identity + 1:
                alerts.append(
                    UsageAlert(
                        "edits_per_identity",
                        f"{count} requests involving identity {ref[:16]} within "
                        f"{window} s (limit {rules.max_edits_per_identity})",
                        start,
                    )
                )
        if not decision.allowed:
            count = self._counters.increment(f"{prefix}:denials", window)
            if count == rules.max_denials + 1:
                alerts.append(
                    UsageAlert(
                        "denials",
                        f"{count} denied decisions within {window} s (limit {rules.max_denials})",
                        start,
                    )
                )
        near_misses = {f.near_miss_figure_id for f in decision.faces if f.near_miss_figure_id}
        for figure_id in sorted(near_misses):
            count = self._counters.add_distinct(f"{prefix}:near_miss", figure_id, window)
            if count == rules.max_near_miss_figures + 1:
                alerts.append(
                    UsageAlert(
                        "near_miss_figures",
                        f"faces came close to {count} distinct public figures within {window} s "
                        f"(limit {rules.max_near_miss_figures})",
                        start,
                    )
                )
        return alerts
