"""Second opinions on NudeNet's weak face detections, so that a petal, a cat or a blurred
blob is not denied as an "unreadable face" (issue 17).

NudeNet's face classes fire at 0.27–0.37 on person-free photos (a cat's fur, blurred blobs:
docs/benchmarks.md, "No false denials"), while covered real faces score 0.26–0.75, so no cut
on the score alone separates them. A weak detection therefore counts only when dlib's CNN
face detector (MMOD, trained apart from NudeNet, and far less thrown by occlusion than the HOG
detector the identity engine uses) also finds a face around the box. It runs only on weak
detections (at most MAX_CHECKS an image, up to ~2.5 s each on a CPU), so few images pay it.
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np

from guard.faces import BBox, import_dlib
from guard.media import RGBImage

# Above every NudeNet face score measured on the person-free corpus (max 0.371), below most
# covered real faces (0.44–0.75): such a detection stands on its own.
STRONG_FACE_SCORE = 0.40
# The CNN is scale-sensitive: the box grown by a factor, scaled to a side in px, cheapest first.
# Between them these views found 38 of the 39 covered faces (red-team photos under edits) that
# NudeNet saw and dlib's HOG could not read; none of them fired on the person-free hits.
_VIEWS = ((1.5, 100), (2.0, 100), (3.0, 100), (2.0, 160))
# A bound on CNN runs per image (cost per request is bounded); weak boxes beyond it are
# counted as faces unchecked (fail closed).
MAX_CHECKS = 2


def _crop(rgb: RGBImage, box: BBox, grow: float, side: int) -> RGBImage:
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(x1 - x0, y1 - y0, 1) * grow / 2
    height, width = rgb.shape[:2]
    top, bottom = int(max(0, cy - half)), int(min(height, cy + half))
    left, right = int(max(0, cx - half)), int(min(width, cx + half))
    patch = rgb[top:bottom, left:right]
    scale = side / max(patch.shape[:2])
    size = (max(1, round(patch.shape[1] * scale)), max(1, round(patch.shape[0] * scale)))
    return np.ascontiguousarray(cv2.resize(patch, size, interpolation=cv2.INTER_AREA))


class FaceCorroborator:
    """Keeps NudeNet face boxes that are strong, or that dlib's CNN detector confirms. If dlib
    or its weights are missing, every box is kept (fail closed: unknown faces deny)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # a dlib detector must not run on two threads at once
        self._cnn: Any = None
        self._loaded = False

    def _detector(self) -> Any:
        if not self._loaded:
            self._loaded = True
            try:
                dlib, weights = import_dlib()
                self._cnn = dlib.cnn_face_detection_model_v1(
                    weights.cnn_face_detector_model_location()
                )
            except (ImportError, RuntimeError):
                self._cnn = None
        return self._cnn

    def confirmed_by_cnn(self, rgb: RGBImage, box: BBox) -> bool:
        with self._lock:
            cnn = self._detector()
            if cnn is None:
                return True
            return any(len(cnn(_crop(rgb, box, *view), 1)) > 0 for view in _VIEWS)

    def keep(self, rgb: RGBImage, scored: list[tuple[BBox, float]]) -> tuple[BBox, ...]:
        """The boxes that count as faces, in their order."""
        kept: list[BBox] = []
        checks = 0
        for box, score in scored:
            if score >= STRONG_FACE_SCORE or checks >= MAX_CHECKS:
                kept.append(box)
            else:
                checks += 1
                if self.confirmed_by_cnn(rgb, box):
                    kept.append(box)
        return tuple(kept)
