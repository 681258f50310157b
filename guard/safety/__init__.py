"""Safety screening: prompts that name public figures, NSFW content, identity drift in outputs,
usage monitoring."""

from __future__ import annotations

from guard.safety.nsfw import NsfwClassifier, NsfwScore, NudeNetClassifier
from guard.safety.output_scan import appeared_faces, drift_facts, pair_faces
from guard.safety.prompt import (
    Named,
    NamedIdentity,
    PromptMatch,
    PromptScreen,
    PromptScreens,
    figures_named_in,
    normalise_text,
)
from guard.safety.unreadable import unreadable_faces, with_unreadable
from guard.safety.usage import UsageAlert, UsageCounters, UsageMonitor

__all__ = [
    "Named",
    "NamedIdentity",
    "NsfwClassifier",
    "NsfwScore",
    "NudeNetClassifier",
    "PromptMatch",
    "PromptScreen",
    "PromptScreens",
    "UsageAlert",
    "UsageCounters",
    "UsageMonitor",
    "appeared_faces",
    "drift_facts",
    "figures_named_in",
    "normalise_text",
    "pair_faces",
    "unreadable_faces",
    "with_unreadable",
]
