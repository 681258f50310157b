"""Policy: the versioned rules (YAML) and ``decide(policy, facts) -> Decision``."""

from __future__ import annotations

from guard.policy.decide import DriftFact, RequestFacts, Stage, decide, deny_unavailable
from guard.policy.decision import (
    DENY_CODES,
    Decision,
    FaceDecision,
    Reason,
    ReasonCode,
    Verdict,
)
from guard.policy.model import (
    MonitoringRules,
    Policy,
    PolicyProblem,
    PolicySource,
    load_policy,
    policy_problems,
)

__all__ = [
    "DENY_CODES",
    "Decision",
    "DriftFact",
    "FaceDecision",
    "MonitoringRules",
    "Policy",
    "PolicyProblem",
    "PolicySource",
    "Reason",
    "ReasonCode",
    "RequestFacts",
    "Stage",
    "Verdict",
    "decide",
    "deny_unavailable",
    "load_policy",
    "policy_problems",
]
