"""Output scan: did the edited image keep each consented person the same person, and did
anyone appear who was not in the input?

Scanning the output for blocked or unconsented faces reuses the identity matcher and the policy;
this module adds the facts only the output has. Input and output faces are paired by identity
with an optimal one-to-one assignment (Hungarian method,
``scipy.optimize.linear_sum_assignment`` on cosine similarity), so two input faces can never
both claim the same output face: an edit that replaces one consented person with a copy of
another is drift for the one who vanished, which a best-match-per-face search would miss.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from guard.faces import Face
from guard.policy import DriftFact


def pair_faces(
    input_faces: Sequence[Face], output_faces: Sequence[Face]
) -> dict[int, tuple[int, float]]:
    """Input face index -> (output face index, cosine similarity), one-to-one, maximising the
    total similarity. Faces left over on either side are absent from the mapping."""
    if not input_faces or not output_faces:
        return {}
    inputs = np.stack([f.embedding for f in input_faces])
    outputs = np.stack([f.embedding for f in output_faces])
    similarity = inputs @ outputs.T
    rows, columns = linear_sum_assignment(similarity, maximize=True)
    return {
        int(row): (int(column), float(similarity[row, column]))
        for row, column in zip(rows, columns, strict=True)
    }


def drift_facts(
    input_faces: Sequence[Face],
    checked_input_indices: Iterable[int],
    output_faces: Sequence[Face],
    *,
    threshold: float,
) -> tuple[DriftFact, ...]:
    """For each checked input face, the similarity to the output face it is paired with.

    Every input face takes part in the pairing (an unchecked face keeps its own counterpart);
    a checked face left without a partner has similarity 0, so it counts as drift: an editor
    that removes or replaces the consented person has not preserved their identity."""
    pairs = pair_faces(input_faces, output_faces)
    facts = []
    for index in checked_input_indices:
        output_index, similarity = pairs.get(index, (None, 0.0))
        facts.append(DriftFact(index, output_index, similarity, threshold))
    return tuple(facts)


def appeared_faces(
    input_faces: Sequence[Face], output_faces: Sequence[Face], *, threshold: float
) -> tuple[int, ...]:
    """Output faces that are nobody from the input: unpaired, or paired with an input face
    they do not resemble (similarity under the drift threshold)."""
    paired = {
        output_index
        for output_index, similarity in pair_faces(input_faces, output_faces).values()
        if similarity >= threshold
    }
    return tuple(index for index in range(len(output_faces)) if index not in paired)
