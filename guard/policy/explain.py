"""Why a decision came out as it did, from its audit entry: every rule that applied, whether it
passed and the reason codes it gave, next to the rule's text in the policy file in force.

    >>> explanation = explain_entry(index, entry, policy, policy_text)   # doctest: +SKIP
    >>> [(r.rule_id, r.outcome) for r in explanation.rules][:2]           # doctest: +SKIP
    [('permitted-operations', 'passed'), ('public-figures-need-their-own-consent', 'not applied')]

The audit entry holds rule ids and codes only, never messages (they can name subjects), so the
explanation reads the same to anyone allowed to read the entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from guard.errors import InvalidInput
from guard.policy.model import Policy, rule_lines


@dataclass(frozen=True)
class RecordedResult:
    """One application of a rule, as audited (``face_index`` None: the whole request)."""

    face_index: int | None
    passed: bool
    reason_codes: tuple[str, ...]


@dataclass(frozen=True)
class RuleExplanation:
    rule_id: str
    results: tuple[RecordedResult, ...]
    description: str = ""
    text: str = ""  # its when/require/forbid/conditions, as YAML
    line: int | None = None  # where the rule starts in the policy file

    @property
    def outcome(self) -> str:
        if not self.results:
            return "not applied"
        return "failed" if any(not r.passed for r in self.results) else "passed"


@dataclass(frozen=True)
class Explanation:
    decision_id: str
    entry_index: int
    verdict: str
    stage: str
    operation: str
    time: str
    policy_id: str
    policy_version: str
    reason_codes: tuple[str, ...]
    # Whether the policy in force now is the one the decision was made under (same id and
    # version); if not, the rule texts cannot be shown, only what was recorded.
    same_policy: bool
    rules: tuple[RuleExplanation, ...]


def _rule_text(policy: Policy, rule_id: str) -> tuple[str, str]:
    rule = policy.rule(rule_id)
    if rule is None:
        return "", ""
    shown = rule.model_dump(
        mode="json",
        by_alias=True,
        exclude_none=True,
        include={"applies_to", "stages", "when", "require", "forbid", "reason", "conditions"},
        exclude_defaults=True,
    )
    return rule.description.strip(), yaml.safe_dump(
        shown, default_flow_style=None, sort_keys=False, width=90
    ).strip()


def explain_entry(
    index: int, entry: dict[str, Any], policy: Policy, policy_text: str | None = None
) -> Explanation:
    """Explain the decision recorded in audit entry ``index`` under ``policy`` (the one in
    force; ``policy_text`` is its file, for line numbers)."""
    if entry.get("kind") != "decision":
        raise InvalidInput(f"audit entry {index} is a {entry.get('kind')!r} entry, not a decision")
    try:
        recorded = entry.get("policy") or {}
        same = recorded.get("id") == policy.id and recorded.get("version") == policy.version
        by_rule: dict[str, list[RecordedResult]] = {}
        for item in entry.get("rules", []):
            by_rule.setdefault(str(item["rule"]), []).append(
                RecordedResult(
                    item["face_index"], bool(item["passed"]), tuple(item["reason_codes"])
                )
            )
    except (AttributeError, KeyError, TypeError) as exc:
        # The log accepts any JSON object; the guard writes these members in one shape only.
        raise InvalidInput(
            f"audit entry {index} does not record its policy and rules as the guard writes them"
        ) from exc
    order = [rule.id for rule in policy.rules] if same else list(by_rule)
    lines = rule_lines(policy_text) if same and policy_text else {}
    rules = []
    for rule_id in order:
        description, text = _rule_text(policy, rule_id) if same else ("", "")
        rules.append(
            RuleExplanation(
                rule_id, tuple(by_rule.get(rule_id, ())), description, text, lines.get(rule_id)
            )
        )
    return Explanation(
        decision_id=str(entry.get("decision_id")),
        entry_index=index,
        verdict=str(entry.get("verdict")),
        stage=str(entry.get("stage")),
        operation=str(entry.get("operation")),
        time=str(entry.get("time")),
        policy_id=str(recorded.get("id")),
        policy_version=str(recorded.get("version")),
        reason_codes=tuple(entry.get("reason_codes", ())),
        same_policy=same,
        rules=tuple(rules),
    )
