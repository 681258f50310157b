"""Safety screening: prompts that name public figures, identity drift in outputs, usage
monitoring."""

from __future__ import annotations

from guard.safety.output_scan import drift_facts
from guard.safety.prompt import PromptMatch, PromptScreen, figures_named_in, normalise_text
from guard.safety.usage import UsageAlert, UsageCounters, UsageMonitor

__all__ = [
    "PromptMatch",
    "PromptScreen",
    "UsageAlert",
    "UsageCounters",
    "UsageMonitor",
    "drift_facts",
    "figures_named_in",
    "normalise_text",
]
