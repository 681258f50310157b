"""Detection at a working resolution: large photos are searched downscaled, and every face is
still found and embedded from full-resolution pixels as the same person."""

from __future__ import annotations

import cv2
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
