"""Output-scan pairing: one-to-one by identity (Hungarian), drift and faces from nowhere."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from guard.faces import Face
from guard.safety import appeared_faces, drift_facts, pair_faces

THRESHOLD = 0.93


def face(vector: np.ndarray) -> Face:
    unit = (vector / np.linalg.norm(vector)).astype(np.float32)
    return Face((0, 0, 10, 10), (), 1.0, unit, "dlib")


def person(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(128)


def look_alike(base: np.ndarray, cosine: float, seed: int) -> np.ndarray:
    """A vector with the given cosine similarity to ``base``."""
    unit = base / np.linalg.norm(base)
    other = np.random.default_rng(seed).standard_normal(128)
    other -= other @ unit * unit
    other /= np.linalg.norm(other)
    return cosine * unit + np.sqrt(1 - cosine**2) * other


ALICE = person(1)
ALICES_TWIN = look_alike(ALICE, 0.95, 2)  # clears the threshold against Alice
CAROL = person(3)


def test_a_consented_face_replaced_by_a_stranger_is_drift_even_beside_a_look_alike() -> None:
    """Input: Alice and her look-alike twin (both consented). Output: Alice and a stranger.
    Matching each input face to its best output face would let the twin claim Alice's face
    (0.95) and pass; the one-to-one pairing gives the twin the stranger."""
    inputs = [face(ALICE), face(ALICES_TWIN)]
    outputs = [face(ALICE), face(CAROL)]
    drift = drift_facts(inputs, [0, 1], outputs, threshold=THRESHOLD)
    assert drift[0].similarity > 0.99 and drift[0].output_face_index == 0
    assert drift[1].output_face_index == 1 and drift[1].similarity < THRESHOLD
    assert appeared_faces(inputs, outputs, threshold=THRESHOLD) == (1,)


def test_a_vanished_face_has_no_partner_and_similarity_zero() -> None:
    drift = drift_facts([face(ALICE), face(CAROL)], [1], [face(ALICE)], threshold=THRESHOLD)
    assert (drift[0].output_face_index, drift[0].similarity) == (None, 0.0)
    assert drift_facts([face(ALICE)], [0], [], threshold=THRESHOLD)[0].similarity == 0.0


def test_faces_appearing_from_nowhere_are_reported() -> None:
    assert appeared_faces([face(ALICE)], [face(CAROL), face(ALICE)], threshold=THRESHOLD) == (0,)
    assert appeared_faces([], [face(CAROL)], threshold=THRESHOLD) == (0,)
    assert appeared_faces([face(ALICE)], [face(ALICE)], threshold=THRESHOLD) == ()


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 5), st.integers(0, 5), st.integers(0, 10_000))
def test_pairing_is_one_to_one_and_optimal(inputs: int, outputs: int, seed: int) -> None:
    left = [face(person(seed + i)) for i in range(inputs)]
    right = [face(person(seed + 100 + j)) for j in range(outputs)]
    pairs = pair_faces(left, right)
    assert len(pairs) == min(inputs, outputs)
    assert len({j for j, _ in pairs.values()}) == len(pairs)
    if inputs and outputs and inputs <= 3 and outputs <= 3:
        from itertools import permutations

        similarity = (
            np.stack([f.embedding for f in left]) @ np.stack([f.embedding for f in right]).T
        )
        best = max(
            sum(similarity[i, j] for i, j in zip(rows, columns, strict=False))
            for rows in permutations(range(inputs), min(inputs, outputs))
            for columns in permutations(range(outputs), min(inputs, outputs))
        )
        assert sum(s for _, s in pairs.values()) >= best - 1e-5
