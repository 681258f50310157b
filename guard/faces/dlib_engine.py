"""The default face engine: dlib's HOG or CNN (MMOD) detector, 5-point alignment and the 128-d
ResNet descriptor, with the weights shipped in the ``face_recognition_models`` package.

dlib's model files are public domain (davisking/dlib-models) and may be used commercially.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from guard.config import Settings
from guard.errors import ConfigurationError
from guard.faces.types import Face, clip_bbox, l2_normalise
from guard.media import RGBImage

CHIP_SIZE = 150
CHIP_PADDING = 0.25


@dataclass(frozen=True)
class Detection:
    rect: Any
    score: float


class DlibEngine:
    """dlib detector + 5-point landmarks + ResNet descriptor. Thread-safe (one lock)."""

    name = "dlib"
    dimension = 128

    def __init__(
        self,
        *,
        detector: Literal["hog", "cnn"] = "hog",
        upsample: int = 1,
        min_detection_score: float = 0.2,
    ) -> None:
        try:
            import dlib
            import face_recognition_models as weights
        except ImportError as exc:  # pragma: no cover - both are core dependencies
            raise ConfigurationError(
                "the dlib face engine needs dlib-bin and face_recognition_models; reinstall "
                "likeness-guard (make venv) or set GUARD_FACE_ENGINE=arcface"
            ) from exc
        self._dlib = dlib
        self.detector_kind = detector
        self.upsample = upsample
        self.min_detection_score = min_detection_score
        if detector == "cnn":
            self._cnn = dlib.cnn_face_detection_model_v1(weights.cnn_face_detector_model_location())
        else:
            self._hog = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(weights.pose_predictor_five_point_model_location())
        self._descriptor = dlib.face_recognition_model_v1(weights.face_recognition_model_location())
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> DlibEngine:
        return cls(
            detector=settings.dlib_detector,
            upsample=settings.dlib_upsample,
            min_detection_score=settings.dlib_min_detection_score,
        )

    def detect_and_embed(self, rgb: RGBImage) -> list[Face]:
        image = np.ascontiguousarray(rgb, dtype=np.uint8)
        with self._lock:
            return self._embed(image, self._detect(image))

    def detect(self, rgb: RGBImage) -> list[Detection]:
        """Detection alone (for benchmarks and diagnostics)."""
        with self._lock:
            return self._detect(np.ascontiguousarray(rgb, dtype=np.uint8))

    def embed(self, rgb: RGBImage, detections: list[Detection]) -> list[Face]:
        """Landmarks and descriptors for given detections (for benchmarks and diagnostics)."""
        with self._lock:
            return self._embed(np.ascontiguousarray(rgb, dtype=np.uint8), detections)

    def _embed(self, image: RGBImage, detections: list[Detection]) -> list[Face]:
        height, width = image.shape[:2]
        faces = []
        for detection in detections:
            shape = self._shape(image, detection.rect)
            chip = self._dlib.get_face_chip(image, shape, CHIP_SIZE, CHIP_PADDING)
            descriptor = np.asarray(self._descriptor.compute_face_descriptor(chip))
            rect = detection.rect
            faces.append(
                Face(
                    bbox=clip_bbox(
                        rect.left(), rect.top(), rect.right(), rect.bottom(), width, height
                    ),
                    landmarks=tuple((float(p.x), float(p.y)) for p in shape.parts()),
                    score=detection.score,
                    embedding=l2_normalise(descriptor),
                    engine=self.name,
                )
            )
        return faces

    def _detect(self, image: RGBImage) -> list[Detection]:
        if self.detector_kind == "cnn":
            found = [
                Detection(d.rect, float(d.confidence)) for d in self._cnn(image, self.upsample)
            ]
        else:
            # A negative adjust_threshold lets weak detections through; the score cut decides.
            rects, scores, _ = self._hog.run(image, self.upsample, -1.0)
            found = [Detection(r, float(s)) for r, s in zip(rects, scores, strict=True)]
        kept = [d for d in found if d.score >= self.min_detection_score]
        return sorted(kept, key=lambda d: (d.rect.left(), d.rect.top()))
