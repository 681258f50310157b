"""Rotated views of an image, for detectors that only see upright faces.

dlib's HOG detector misses faces tilted by more than ~10–15°: measured here, Tom Hanks rotated
20° and three of t1's six people rotated 30° went undetected, and an undetected face is a face
the gate never checks. Detecting on copies rotated by a few angles and mapping the boxes back
closes that gap (docs/benchmarks.md gives the cost).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from guard.faces.boxes import Box
from guard.media import RGBImage

Affine = NDArray[np.float64]  # 2x3


@dataclass(frozen=True, eq=False)
class View:
    """The image turned by ``angle`` degrees (counter-clockwise) on a canvas that holds all
    of it, and the affine map from the view's pixels back to the original's."""

    angle: float
    image: RGBImage
    to_original: Affine
    original_size: tuple[int, int]  # height, width

    def map_points(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        mapped: NDArray[np.float64] = points @ self.to_original[:, :2].T + self.to_original[:, 2]
        return mapped

    def map_box(self, x0: float, y0: float, x1: float, y1: float) -> Box:
        """The view's box as an upright box of the same size around the same face centre in
        the original (the box enclosing the turned box would be up to 37 % larger)."""
        [(cx, cy)] = self.map_points(np.array([[(x0 + x1) / 2, (y0 + y1) / 2]], float))
        half_width, half_height = (x1 - x0) / 2, (y1 - y0) / 2
        return (
            float(cx - half_width),
            float(cy - half_height),
            float(cx + half_width),
            float(cy + half_height),
        )


def views(rgb: RGBImage, angles: tuple[float, ...]) -> list[View]:
    """The upright image first, then one view per non-zero angle."""
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    height, width = rgb.shape[:2]
    result = [View(0.0, rgb, identity, (height, width))]
    for angle in angles:
        if angle == 0:
            continue
        forward = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
        cos, sin = abs(forward[0, 0]), abs(forward[0, 1])
        new_width, new_height = int(height * sin + width * cos), int(height * cos + width * sin)
        forward[0, 2] += new_width / 2 - width / 2
        forward[1, 2] += new_height / 2 - height / 2
        turned = cv2.warpAffine(rgb, forward, (new_width, new_height))
        result.append(
            View(
                angle,
                np.ascontiguousarray(turned),
                np.asarray(cv2.invertAffineTransform(forward), dtype=np.float64),
                (height, width),
            )
        )
    return result
