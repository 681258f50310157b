"""The classic editor makes visible edits and leaves faces the same person, on real photos."""

from __future__ import annotations

import numpy as np
import pytest

from guard.editors import ClassicEditor
from guard.errors import InvalidInput
from guard.faces import FaceEngine
from guard.samples import sample_rgb

PORTRAIT = sample_rgb("t1")[150:886, 0:262]
EDITOR = ClassicEditor()
OPERATIONS = [
    ("background_blur", {}),
    ("relight", {"direction": "right", "intensity": 0.8}),
    ("color_grade", {"look": "teal_orange"}),
    ("color_grade", {"look": "mono", "amount": 1.0}),
]


def _face_box_mask(shape: tuple[int, ...], bbox: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros(shape[:2], dtype=bool)
    x0, y0, x1, y1 = bbox
    mask[y0:y1, x0:x1] = True
    return mask


@pytest.mark.parametrize(("operation", "params"), OPERATIONS)
def test_edit_is_visible_and_identity_is_kept(
    face_engine: FaceEngine, operation: str, params: dict
) -> None:  # type: ignore[type-arg]
    [face] = face_engine.detect_and_embed(PORTRAIT)
    edited = EDITOR.edit(PORTRAIT, [face], operation, params)
    assert edited.shape == PORTRAIT.shape and edited.dtype == np.uint8
    difference = np.abs(edited.astype(int) - PORTRAIT.astype(int)).mean(axis=2)
    inside = _face_box_mask(PORTRAIT.shape, face.bbox)
    # Visible: the picture outside the face changed by grey levels on average (blur changes
    # only the background, a smaller share of this portrait; its own test measures sharpness).
    assert difference[~inside].mean() > (2.0 if operation == "background_blur" else 4.0)
    # Preserved: the face changed much less than the rest, and is the same person.
    assert difference[inside].mean() < difference[~inside].mean()
    [after] = face_engine.detect_and_embed(edited)
    assert float(after.embedding @ face.embedding) > 0.98


def test_background_blur_keeps_the_person_sharp(face_engine: FaceEngine) -> None:
    import cv2

    faces = face_engine.detect_and_embed(PORTRAIT)
    edited = EDITOR.edit(PORTRAIT, faces, "background_blur", {"strength": 0.03})

    def sharpness(rgb: np.ndarray, region: tuple[slice, slice]) -> float:
        gray = cv2.cvtColor(np.ascontiguousarray(rgb[region]), cv2.COLOR_RGB2GRAY)
        return float(cv2.Laplacian(gray, cv2.CV_64F).var())

    background = (slice(0, 120), slice(170, 262))  # wall and window behind her shoulder
    x0, y0, x1, y1 = faces[0].bbox
    face_region = (slice(y0, y1), slice(x0, x1))
    assert sharpness(edited, background) < 0.35 * sharpness(PORTRAIT, background)
    assert sharpness(edited, face_region) > 0.9 * sharpness(PORTRAIT, face_region)


def test_works_without_faces() -> None:
    from skimage import data

    coffee = data.coffee()
    for operation, params in OPERATIONS:
        assert EDITOR.edit(coffee, [], operation, params).shape == coffee.shape


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("relight", {"direction": "sideways"}),
        ("relight", {"intensity": 5}),
        ("relight", {"intensity": "bright"}),
        ("color_grade", {"look": "sepia-ish"}),
        ("background_blur", {"strength": 0}),
        ("background_blur", {"radius": 3}),
        ("face_swap", {}),
    ],
)
def test_bad_operation_or_parameters_are_invalid_input(operation: str, params: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidInput):
        EDITOR.edit(PORTRAIT, [], operation, params)
