"""Policy: versioned, composable rules (YAML, see :mod:`guard.policy.rules`) and
``decide(policy, facts) -> Decision``."""

from __future__ import annotations

from guard.identity import PromptSubject
from guard.policy.decide import decide, deny_unavailable
from guard.policy.decision import (
    DENY_CODES,
    Decision,
    FaceDecision,
    Reason,
    ReasonCode,
    RuleOutcome,
    Verdict,
)
from guard.policy.explain import Explanation, RuleExplanation, explain_entry
from guard.policy.expressions import PREDICATES
from guard.policy.facts import DriftFact, RequestFacts, Stage
from guard.policy.model import (
    MonitoringRules,
    Policy,
    PolicyProblem,
    PolicySource,
    load_policy,
    policy_problems,
    rule_lines,
)
from guard.policy.rules import KNOWN_CONDITIONS, Rule

__all__ = [
    "DENY_CODES",
    "KNOWN_CONDITIONS",
    "PREDICATES",
    "Decision",
    "DriftFact",
    "Explanation",
    "FaceDecision",
    "MonitoringRules",
    "Policy",
    "PolicyProblem",
    "PolicySource",
    "PromptSubject",
    "Reason",
    "ReasonCode",
    "RequestFacts",
    "Rule",
    "RuleExplanation",
    "RuleOutcome",
    "Stage",
    "Verdict",
    "decide",
    "deny_unavailable",
    "explain_entry",
    "load_policy",
    "policy_problems",
    "rule_lines",
]
