"""The default face engine: dlib's HOG or CNN (MMOD) detector, 5-point alignment and the 128-d
ResNet descriptor, with the weights shipped in the ``face_recognition_models`` package.

dlib's model files are public domain (davisking/dlib-models) and may be used commercially.

HOG only sees upright faces, so detection also runs on copies turned by the angles in
``GUARD_DLIB_ROTATION_SWEEP`` (see :mod:`guard.faces.rotation`); each face is then embedded from
the view it was found in, where it is upright.
"""

from __future__ import annotations

import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from guard.config import Settings
from guard.errors import ConfigurationError
from guard.faces.rotation import Box, View, iou, views
from guard.faces.types import Face, clip_bbox, l2_normalise
from guard.media import RGBImage

CHIP_SIZE = 150
CHIP_PADDING = 0.25
# Two detections of one face in different rotated views overlap far more than this.
SAME_FACE_IOU = 0.3


@dataclass(frozen=True)
class Detection:
    """A face found in one view: ``rect`` in the view's pixels, ``box`` in the original's."""

    view: View
    rect: Any
    score: float
    box: Box


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
        rotation_sweep: tuple[float, ...] = (-30.0, 30.0),
    ) -> None:
        # face_recognition_models 0.3.0 (its last release) finds its weight files through
        # pkg_resources, which setuptools warns about on import; the lookup still works, and
        # the warning would otherwise open the output of every command that builds a guard.
        warnings.filterwarnings(
            "ignore",
            message="pkg_resources is deprecated",
            category=UserWarning,
            module="face_recognition_models",
        )
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
        self.rotation_sweep = rotation_sweep
        # One detector per view: dlib detectors must not be shared between threads, and the
        # views are searched in parallel (dlib releases the GIL; 1.7x faster on 2 cores).
        view_count = 1 + sum(1 for angle in rotation_sweep if angle != 0)
        if detector == "cnn":
            path = weights.cnn_face_detector_model_location()
            self._detectors = [dlib.cnn_face_detection_model_v1(path) for _ in range(view_count)]
        else:
            self._detectors = [dlib.get_frontal_face_detector() for _ in range(view_count)]
        self._pool = ThreadPoolExecutor(
            max_workers=min(view_count, os.cpu_count() or 1), thread_name_prefix="dlib-detect"
        )
        self._shape = dlib.shape_predictor(weights.pose_predictor_five_point_model_location())
        self._descriptor = dlib.face_recognition_model_v1(weights.face_recognition_model_location())
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> DlibEngine:
        return cls(
            detector=settings.dlib_detector,
            upsample=settings.dlib_upsample,
            min_detection_score=settings.dlib_min_detection_score,
            rotation_sweep=settings.dlib_rotation_sweep,
        )

    def detect_and_embed(self, rgb: RGBImage) -> list[Face]:
        with self._lock:
            return self._embed(self._detect(rgb))

    def detect(self, rgb: RGBImage) -> list[Detection]:
        """Detection alone (for benchmarks and diagnostics)."""
        with self._lock:
            return self._detect(rgb)

    def embed(self, detections: list[Detection]) -> list[Face]:
        """Landmarks and descriptors for detections (for benchmarks and diagnostics)."""
        with self._lock:
            return self._embed(detections)

    def _embed(self, detections: list[Detection]) -> list[Face]:
        faces = []
        for detection in detections:
            # Landmarks and the aligned chip come from the view the face was found in, where it
            # is upright; the landmarks are then mapped back to the original image.
            image = detection.view.image
            shape = self._shape(image, detection.rect)
            chip = self._dlib.get_face_chip(image, shape, CHIP_SIZE, CHIP_PADDING)
            descriptor = np.asarray(self._descriptor.compute_face_descriptor(chip))
            points = detection.view.map_points(
                np.array([(p.x, p.y) for p in shape.parts()], dtype=float)
            )
            height, width = detection.view.original_size
            faces.append(
                Face(
                    bbox=clip_bbox(*detection.box, width, height),
                    landmarks=tuple((float(x), float(y)) for x, y in points),
                    score=detection.score,
                    embedding=l2_normalise(descriptor),
                    engine=self.name,
                )
            )
        return faces

    def _detect(self, rgb: RGBImage) -> list[Detection]:
        """Every face in the upright image and in each rotated view, one detection per face
        (the best-scoring view wins), left to right."""
        image = np.ascontiguousarray(rgb, dtype=np.uint8)
        turned = views(image, self.rotation_sweep)
        per_view = self._pool.map(self._detect_in, self._detectors, [v.image for v in turned])
        found = []
        for view, detections in zip(turned, per_view, strict=True):
            for rect, score in detections:
                if score >= self.min_detection_score:
                    box = view.map_box(rect.left(), rect.top(), rect.right(), rect.bottom())
                    found.append(Detection(view, rect, score, box))
        kept: list[Detection] = []
        for detection in sorted(found, key=lambda d: d.score, reverse=True):
            if all(iou(detection.box, other.box) <= SAME_FACE_IOU for other in kept):
                kept.append(detection)
        return sorted(kept, key=lambda d: (d.box[0], d.box[1]))

    def _detect_in(self, detector: Any, image: RGBImage) -> list[tuple[Any, float]]:
        if self.detector_kind == "cnn":
            return [(d.rect, float(d.confidence)) for d in detector(image, self.upsample)]
        # A negative adjust_threshold lets weak detections through; the score cut decides.
        rects, scores, _ = detector.run(image, self.upsample, -1.0)
        return [(r, float(s)) for r, s in zip(rects, scores, strict=True)]
