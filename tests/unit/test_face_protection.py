"""Face protection for the diffusers editor: whatever the boxes, the protected pixels come back
bit for bit and the rest is the edit's."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from guard.editors.face_protection import keep_faces, protected_box, protection_mask
from guard.faces import Face

SHAPE = (120, 90)


def _face(x0: int, y0: int, width: int, height: int) -> Face:
    box = (x0, y0, min(SHAPE[1], x0 + width), min(SHAPE[0], y0 + height))
    return Face(box, (), 1.0, np.ones(128, np.float32), "test")


BOXES = st.lists(
    st.builds(
        _face,
        st.integers(0, SHAPE[1] - 2),
        st.integers(0, SHAPE[0] - 2),
        st.integers(2, 60),
        st.integers(2, 60),
    ),
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(BOXES, st.integers(0, 2**31 - 1))
def test_protected_boxes_are_kept_bit_for_bit(faces: list[Face], seed: int) -> None:
    rng = np.random.default_rng(seed)
    original = rng.integers(0, 256, (*SHAPE, 3), dtype=np.uint8)
    edited = rng.integers(0, 256, (*SHAPE, 3), dtype=np.uint8)
    kept = keep_faces(original, edited, faces)
    inside = np.zeros(SHAPE, bool)
    for face in faces:
        x0, y0, x1, y1 = protected_box(face.bbox, SHAPE)
        inside[y0:y1, x0:x1] = True
    assert np.array_equal(kept[inside], original[inside])
    mask = protection_mask(SHAPE, faces)
    untouched = mask == 0.0
    assert np.array_equal(kept[untouched], edited[untouched])
    assert mask.min() >= 0.0 and mask.max() <= 1.0


def test_no_face_means_the_edit_as_it_is() -> None:
    edited = np.full((*SHAPE, 3), 7, np.uint8)
    assert keep_faces(np.zeros_like(edited), edited, []) is edited
