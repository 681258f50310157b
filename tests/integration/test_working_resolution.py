"""Detection at a working resolution: large photos are searched downscaled, and every face is
still found and embedded from full-resolution pixels as the same person."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from guard.config import Settings
from guard.faces import FaceEngine
from guard.media import working_scale
from guard.samples import SampleName, sample_rgb

SAME = Settings(data_dir="unused").dlib_registry_threshold  # type: ignore[arg-type]


def test_only_images_over_the_working_side_are_scaled() -> None:
    assert working_scale(886, 1280, 1280) == 1.0
    assert working_scale(6000, 6000, 1200) == pytest.approx(0.2)
    assert working_scale(30, 2560, 1280) == pytest.approx(0.5)


@pytest.mark.parametrize(("name", "factor", "people"), [("astronaut", 4, 1), ("t1", 2, 6)])
def test_upscaled_photos_find_the_same_people(
    face_engine: FaceEngine, name: SampleName, factor: int, people: int
) -> None:
    original = sample_rgb(name)
    height, width = original.shape[:2]
    large = cv2.resize(original, (width * factor, height * factor), interpolation=cv2.INTER_CUBIC)
    references = face_engine.detect_and_embed(original)
    faces = face_engine.detect_and_embed(large)
    assert len(faces) == len(references) == people
    for face, reference in zip(faces, references, strict=True):
        assert float(face.embedding @ reference.embedding) >= SAME
        # The box is in the full-resolution image's pixels, around the same face.
        centre = [(face.bbox[0] + face.bbox[2]) / 2, (face.bbox[1] + face.bbox[3]) / 2]
        expected = [
            (reference.bbox[0] + reference.bbox[2]) / 2 * factor,
            (reference.bbox[1] + reference.bbox[3]) / 2 * factor,
        ]
        assert abs(centre[0] - expected[0]) < 0.15 * (face.bbox[2] - face.bbox[0])
        assert abs(centre[1] - expected[1]) < 0.15 * (face.bbox[3] - face.bbox[1])


MIN_WORKING_FACE_PX = 40
"""The smallest face (detector box width at the working size) the guard reliably sees
(docs/service.md, Cost budget). Measured 2026-12-02 in a 2560 px canvas (working scale 0.5):
found from 30 px (astronaut) and 35 px (Tom Hanks), neither at 25 px."""


@pytest.mark.parametrize("name", ["astronaut", "tom_hanks"])
@pytest.mark.parametrize("working_px", [MIN_WORKING_FACE_PX, 60])
def test_the_documented_smallest_face_is_found_in_a_large_image(
    face_engine: FaceEngine, name: SampleName, working_px: int
) -> None:
    photo = sample_rgb(name)
    (reference,) = face_engine.detect_and_embed(photo)
    scale = 2 * working_px / (reference.bbox[2] - reference.bbox[0])  # 2: the canvas halves
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=interpolation)
    canvas = np.full((2560, 2560, 3), 128, np.uint8)  # searched at 1280: half size
    canvas[1000 : 1000 + small.shape[0], 1000 : 1000 + small.shape[1]] = small
    assert working_scale(2560, 2560, Settings(data_dir="unused").detect_max_side) == 0.5  # type: ignore[arg-type]
    (face,) = face_engine.detect_and_embed(canvas)
    assert 1000 <= face.bbox[0] < 1000 + small.shape[1]
