"""Safety screening: prompts that name public figures, NSFW content, identity drift in outputs,
usage monitoring."""

from __future__ import annotations

from guard.safety.nsfw import NsfwClassifier, NsfwScore, NudeNetClassifier, SeenFace
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
from guard.safety.unreadable import UnreadableFaces, unread_faces, with_unreadable
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
    "SeenFace",
    "UnreadableFaces",
    "UsageAlert",
    "UsageCounters",
    "UsageMonitor",
    "appeared_faces",
    "drift_facts",
    "figures_named_in",
    "normalise_text",
    "pair_faces",
    "unread_faces",
    "with_unreadable",
]
