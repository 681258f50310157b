"""Keeping faces out of an edit's reach: a mask that is exactly 1.0 over each protected face
(its detector box, grown a little) and falls off smoothly around it, and the compositing that
puts the original pixels back wherever the mask is 1.0, bit for bit."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from guard.faces import BBox, Face
from guard.media import RGBImage

FloatImage = NDArray[np.float32]


def protected_box(bbox: BBox, shape: tuple[int, int], *, grow: float = 1.25) -> BBox:
    """The face box grown by ``grow`` around its centre, clipped to the image: the region kept
    exactly as it was."""
    height, width = shape
    x0, y0, x1, y1 = bbox
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_w, half_h = (x1 - x0) * grow / 2, (y1 - y0) * grow / 2
    return (
        max(0, int(cx - half_w)),
        max(0, int(cy - half_h)),
        min(width, int(np.ceil(cx + half_w))),
        min(height, int(np.ceil(cy + half_h))),
    )


def protection_mask(shape: tuple[int, int], faces: Sequence[Face]) -> FloatImage:
    """1.0 over each face's protected box, feathered to 0.0 outside it over about a fifth of
    the face's width."""
    mask = np.zeros(shape, dtype=np.float32)
    feather = 1.0
    for face in faces:
        x0, y0, x1, y1 = protected_box(face.bbox, shape)
        mask[y0:y1, x0:x1] = 1.0
        feather = max(feather, 0.2 * (face.bbox[2] - face.bbox[0]))
    if not faces:
        return mask
    blurred = cv2.GaussianBlur(mask, (0, 0), feather / 2.0)
    # The blur lowers the edge inside the box too: the maximum keeps the box itself at 1.0.
    return np.asarray(np.maximum(mask, np.clip(blurred * 2.0, 0.0, 1.0)), dtype=np.float32)


def keep_faces(original: RGBImage, edited: RGBImage, faces: Sequence[Face]) -> RGBImage:
    """``edited`` with each face's region from ``original``: unchanged pixel for pixel inside
    the protected boxes, blended across the feathered edge."""
    if not faces:
        return edited
    mask = protection_mask(original.shape[:2], faces)[:, :, None]
    blended = original.astype(np.float32) * mask + edited.astype(np.float32) * (1.0 - mask)
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return np.where(mask == 1.0, original, out)
