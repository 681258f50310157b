"""The default face engine: dlib's HOG or CNN (MMOD) detector, 5-point alignment and the 128-d
ResNet descriptor, with the weights shipped in the ``face_recognition_models`` package.

dlib's model files are public domain (davisking/dlib-models) and may be used commercially.

The cost of a search is set by the faces, not the pixels:

- The upright search runs at a working resolution (``GUARD_DETECT_MAX_SIDE``): a larger image is
  searched on a downscaled copy, so its cost and memory are bounded whatever the input (a 36 MP
  image searched at full size with upsampling and turned views took over 5 GB).
- HOG only sees upright faces. Where a second detector saw a face the upright search did not
  find (``candidates``: NudeNet's faces, which it finds turned too), copies of just that place,
  turned by the angles in ``GUARD_DLIB_ROTATION_SWEEP``, are searched at the size HOG reads
  best (see :mod:`guard.faces.rotation`). Without a second detector every turned view of the
  whole image is searched, as the only safe choice.
- Each face is embedded from the full-resolution pixels around it, turned upright, so
  recognition quality holds; a face whose aligned chip is bit for bit one embedded before (the
  output of an edit that left it alone) reuses that descriptor instead of computing it again.
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from guard.config import Settings
from guard.errors import ConfigurationError
from guard.faces.boxes import Box, iou, same_face
from guard.faces.dlib_resnet import ResNetDescriptor
from guard.faces.dlib_weights import import_dlib
from guard.faces.rotation import View, views
from guard.faces.types import BBox, Face, clip_bbox, l2_normalise
from guard.media import RGBImage, downscaled

CHIP_SIZE = 150
CHIP_PADDING = 0.25
# Two detections of one face in different rotated views overlap far more than this.
SAME_FACE_IOU = 0.3
# Around a second detector's face, HOG searches a crop of this many face sizes, scaled so the
# face is about this many pixels: twice HOG's 80 px window, so no upsampling is needed and a
# turned face still fills the window.
AROUND_CROP_FACES = 2.0
AROUND_FACE_PX = 160
# Turned views of the whole image are searched on a copy this small, without upsampling: they
# find a large turned face (over a sixth of the long side: a portrait) even where NudeNet, which
# steers the search for smaller ones, saw nothing. ~2 x 20 ms.
COARSE_TURNED_SIDE = 480
# Descriptors kept for chips seen before (the output scan of an edit that left a face alone).
DESCRIPTOR_CACHE = 256


class _DetectorBank:
    """HOG detectors no engine of this process uses any more, for the next engine.

    dlib builds its frontal-face detector from a serialised model on every call (0.43 s each,
    three per engine: 1.3 s of every ``Guard()``), and a detector may serve one thread at a
    time. An engine takes its detectors from here and gives them back when it is collected,
    so a process that builds engine after engine (the CLI in tests, a library user's guards)
    pays for them once, and no two live engines ever share one."""

    def __init__(self) -> None:
        self._spare: list[Any] = []
        self._lock = threading.Lock()

    def take(self, dlib: Any, count: int) -> list[Any]:
        with self._lock:
            taken = [self._spare.pop() for _ in range(min(count, len(self._spare)))]
        return taken + [dlib.get_frontal_face_detector() for _ in range(count - len(taken))]

    def give_back(self, detectors: list[Any]) -> None:
        with self._lock:
            self._spare.extend(detectors)


_HOG_DETECTORS = _DetectorBank()


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
        turned_views: Literal["steered", "everywhere"] = "steered",
        detect_max_side: int = 1280,
    ) -> None:
        try:
            dlib, weights = import_dlib()
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
        self.turned_views = turned_views
        self.detect_max_side = detect_max_side
        # One detector per view: dlib detectors must not be shared between threads, and the
        # views are searched in parallel (dlib releases the GIL; 1.7x faster on 2 cores).
        view_count = 1 + sum(1 for angle in rotation_sweep if angle != 0)
        if detector == "cnn":
            path = weights.cnn_face_detector_model_location()
            self._detectors = [dlib.cnn_face_detection_model_v1(path) for _ in range(view_count)]
        else:
            self._detectors = _HOG_DETECTORS.take(dlib, view_count)
            weakref.finalize(self, _HOG_DETECTORS.give_back, self._detectors)
        self._pool = ThreadPoolExecutor(
            max_workers=min(view_count, os.cpu_count() or 1), thread_name_prefix="dlib-detect"
        )
        self._shape = dlib.shape_predictor(weights.pose_predictor_five_point_model_location())
        # dlib's own ResNet, run with NumPy's OpenBLAS: the same numbers, 7-9x faster than the
        # dlib-bin wheel, which has no BLAS (guard/faces/dlib_resnet.py).
        self._descriptor = ResNetDescriptor.from_file(weights.face_recognition_model_location())
        self._descriptors: OrderedDict[bytes, NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> DlibEngine:
        return cls(
            detector=settings.dlib_detector,
            upsample=settings.dlib_upsample,
            min_detection_score=settings.dlib_min_detection_score,
            rotation_sweep=settings.dlib_rotation_sweep,
            turned_views=settings.dlib_turned_views,
            detect_max_side=settings.detect_max_side,
        )

    def detect_and_embed(
        self, rgb: RGBImage, *, candidates: Sequence[BBox] | None = None
    ) -> list[Face]:
        with self._lock:
            return self._embed(self._detect(rgb, candidates))

    def detect(self, rgb: RGBImage, *, candidates: Sequence[BBox] | None = None) -> list[Detection]:
        """Detection alone (for benchmarks and diagnostics)."""
        with self._lock:
            return self._detect(rgb, candidates)

    def embed(self, detections: list[Detection]) -> list[Face]:
        """Landmarks and descriptors for detections (for benchmarks and diagnostics)."""
        with self._lock:
            return self._embed(detections)

    def _embed(self, detections: list[Detection]) -> list[Face]:
        shapes, chips = [], []
        for detection in detections:
            # Landmarks and the aligned chip come from the view the face was found in, where it
            # is upright; the landmarks are then mapped back to the original image.
            image = detection.view.image
            shapes.append(self._shape(image, detection.rect))
            chips.append(self._dlib.get_face_chip(image, shapes[-1], CHIP_SIZE, CHIP_PADDING))
        descriptors = self._descriptors_of(chips)
        faces = []
        for detection, shape, descriptor in zip(detections, shapes, descriptors, strict=True):
            points = detection.view.map_points(
                np.array([(p.x, p.y) for p in shape.parts()], dtype=float)
            )
            height, width = detection.view.original_size
            faces.append(
                Face(
                    bbox=clip_bbox(*detection.box, width, height),
                    landmarks=tuple((float(x), float(y)) for x, y in points),
                    score=detection.score,
                    embedding=descriptor,
                    engine=self.name,
                )
            )
        return faces

    def _descriptors_of(self, chips: list[RGBImage]) -> list[NDArray[np.float32]]:
        """The descriptors of aligned chips, the new ones computed in one batch. The same
        pixels give the same descriptor, so a chip seen before (verified by its hash, never
        assumed) is not computed again."""
        keys = [hashlib.sha256(np.ascontiguousarray(chip).tobytes()).digest() for chip in chips]
        missing = [i for i, key in enumerate(keys) if key not in self._descriptors]
        if missing:
            computed = self._descriptor.compute(np.stack([chips[i] for i in missing]))
            for i, vector in zip(missing, computed, strict=True):
                self._descriptors[keys[i]] = l2_normalise(vector)
        found = []
        for key in keys:
            self._descriptors.move_to_end(key)
            found.append(self._descriptors[key])
        while len(self._descriptors) > DESCRIPTOR_CACHE:
            self._descriptors.popitem(last=False)
        return found

    def _detect(self, rgb: RGBImage, candidates: Sequence[BBox] | None) -> list[Detection]:
        """Every face, one detection per face (the best-scoring view wins), left to right."""
        image = np.ascontiguousarray(rgb, dtype=np.uint8)
        small, scale = downscaled(image, self.detect_max_side)  # area-averaged: no aliasing
        if candidates is None or self.turned_views == "everywhere":
            # Every turned view of the working copy, upsampled like the upright one.
            searched = views(small, self.rotation_sweep)
            jobs = [(view, self.upsample, scale) for view in searched]
        else:
            # The upright working copy; turned views of a small copy, for large turned faces
            # even if NudeNet missed them (a crafted image can blind one detector); then each
            # candidate the two did not find, searched turned at the size HOG reads best.
            coarse, coarse_scale = downscaled(image, COARSE_TURNED_SIDE)
            upright = [(views(small, ())[0], self.upsample, scale)]
            jobs = upright + [
                (view, 0, coarse_scale) for view in views(coarse, self.rotation_sweep)[1:]
            ]
        found = self._detect_in_views(image, jobs)
        for candidate in candidates or () if self.turned_views == "steered" else ():
            if not any(same_face(candidate, d.box) for d in found):
                found.extend(self._detect_around(image, candidate))
        kept: list[Detection] = []
        for detection in sorted(found, key=lambda d: d.score, reverse=True):
            if all(iou(detection.box, other.box) <= SAME_FACE_IOU for other in kept):
                kept.append(detection)
        return sorted(kept, key=lambda d: (d.box[0], d.box[1]))

    def _detect_around(self, image: RGBImage, candidate: BBox) -> list[Detection]:
        """The faces in a crop around ``candidate``, searched upright and turned, with the crop
        scaled so the face is ``AROUND_FACE_PX`` wide whatever its size in the image."""
        x0, y0, x1, y1 = candidate
        side = max(x1 - x0, y1 - y0)
        if side < 1:
            return []
        height, width = image.shape[:2]
        half = side * AROUND_CROP_FACES / 2
        centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2
        left, top = max(0, int(centre_x - half)), max(0, int(centre_y - half))
        right, bottom = min(width, int(centre_x + half)), min(height, int(centre_y + half))
        if right <= left or bottom <= top:
            return []
        scale = AROUND_FACE_PX / side
        crop = cv2.resize(
            image[top:bottom, left:right],
            (max(1, round((right - left) * scale)), max(1, round((bottom - top) * scale))),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        )
        searched = views(np.ascontiguousarray(crop), self.rotation_sweep)
        found = []
        for detection in self._detect_in_views(None, [(view, 0, 1.0) for view in searched]):
            # As a detection on the whole image scaled by ``scale``, then at full resolution.
            bx0, by0, bx1, by1 = detection.box
            box = (bx0 + left * scale, by0 + top * scale, bx1 + left * scale, by1 + top * scale)
            moved = Detection(detection.view, detection.rect, detection.score, box)
            found.append(full_resolution(moved, image, scale, self._dlib.rectangle))
        return found

    def _detect_in_views(
        self, image: RGBImage | None, jobs: Sequence[tuple[View, int, float]]
    ) -> list[Detection]:
        """Detections above the score cut in each ``(view, upsample, scale)``, searched in
        parallel (one detector each; dlib releases the GIL). A view of a copy of ``image``
        scaled by ``scale`` != 1 gives detections on ``image`` at full resolution."""
        per_view = self._pool.map(
            self._detect_in,
            self._detectors,
            [view.image for view, _, _ in jobs],
            [upsample for _, upsample, _ in jobs],
        )
        found = []
        for (view, _, scale), detections in zip(jobs, per_view, strict=False):
            for rect, score in detections:
                if score < self.min_detection_score:
                    continue
                box = view.map_box(rect.left(), rect.top(), rect.right(), rect.bottom())
                detection = Detection(view, rect, score, box)
                if scale != 1.0 and image is not None:
                    detection = full_resolution(detection, image, scale, self._dlib.rectangle)
                found.append(detection)
        return found

    def _detect_in(self, detector: Any, image: RGBImage, upsample: int) -> list[tuple[Any, float]]:
        if self.detector_kind == "cnn":
            return [(d.rect, float(d.confidence)) for d in detector(image, upsample)]
        # A negative adjust_threshold lets weak detections through; the score cut decides.
        rects, scores, _ = detector.run(image, upsample, -1.0)
        return [(r, float(s)) for r, s in zip(rects, scores, strict=True)]


# How much of the full-resolution image around a face its crop holds, in face sizes: room for
# the 5-point landmarks and the chip's 25 % padding at any angle of the sweep.
CROP_FACES = 2.5


def full_resolution(
    detection: Detection, image: RGBImage, scale: float, rectangle: Any
) -> Detection:
    """A detection made on the image downscaled by ``scale`` as one on the full-resolution
    ``image``: its box scaled back, and a view of just the face's surroundings, turned by the
    detection's angle so the face stands upright, for landmarks and the descriptor. The crop
    costs only (face size)^2, however large the image."""
    rect = detection.rect
    box = tuple(v / scale for v in detection.box)
    centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    face_width, face_height = rect.width() / scale, rect.height() / scale
    side = max(1, int(np.ceil(CROP_FACES * max(face_width, face_height))))
    forward = cv2.getRotationMatrix2D((centre_x, centre_y), detection.view.angle, 1.0)
    forward[0, 2] += side / 2 - centre_x
    forward[1, 2] += side / 2 - centre_y
    crop = cv2.warpAffine(image, forward, (side, side), flags=cv2.INTER_LINEAR)
    view = View(
        detection.view.angle,
        np.ascontiguousarray(crop),
        np.asarray(cv2.invertAffineTransform(forward), dtype=np.float64),
        (int(image.shape[0]), int(image.shape[1])),
    )
    half_width, half_height = face_width / 2, face_height / 2
    upright = rectangle(
        round(side / 2 - half_width),
        round(side / 2 - half_height),
        round(side / 2 + half_width),
        round(side / 2 + half_height),
    )
    return Detection(view, upright, detection.score, (box[0], box[1], box[2], box[3]))
