"""Output scan: did the edited image keep each consented person the same person?

Scanning the output for blocked or unconsented faces reuses the identity matcher and the policy;
this module adds the one fact only the output has: identity drift between input and output.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from guard.faces import Face
from guard.policy import DriftFact


def drift_facts(
    input_faces: Sequence[Face],
    checked_input_indices: Iterable[int],
    output_faces: Sequence[Face],
    *,
    threshold: float,
) -> tuple[DriftFact, ...]:
    """For each checked input face, its best cosine similarity to any output face.

    A face that vanished from the output has similarity 0 (so it counts as drift: an editor
    that removes or replaces the consented person has not preserved their identity)."""
    outputs = np.stack([f.embedding for f in output_faces]) if output_faces else None
    facts = []
    for index in checked_input_indices:
        if outputs is None:
            facts.append(DriftFact(index, None, 0.0, threshold))
            continue
        similarities = outputs @ input_faces[index].embedding
        best = int(np.argmax(similarities))
        facts.append(DriftFact(index, best, float(similarities[best]), threshold))
    return tuple(facts)
