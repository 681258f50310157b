"""Safety screening: prompts that name public figures, identity drift in outputs."""

from __future__ import annotations

from guard.safety.output_scan import drift_facts
from guard.safety.prompt import figures_named_in, normalise_text

__all__ = ["drift_facts", "figures_named_in", "normalise_text"]
