"""Transformations an uploader's pipeline applies to photos, for robustness tests."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from guard.media import RGBImage, decode_image, encode_image


def jpeg(rgb: RGBImage, quality: int = 50) -> RGBImage:
    return decode_image(encode_image(rgb, "jpeg", quality=quality)).rgb


def half(rgb: RGBImage) -> RGBImage:
    height, width = rgb.shape[:2]
    return cv2.resize(rgb, (width // 2, height // 2), interpolation=cv2.INTER_AREA)


def flip(rgb: RGBImage) -> RGBImage:
    return np.ascontiguousarray(rgb[:, ::-1])


def crop10(rgb: RGBImage) -> RGBImage:
    """Cut 5 % from every side (a 10 % crop)."""
    height, width = rgb.shape[:2]
    dy, dx = round(height * 0.05), round(width * 0.05)
    return np.ascontiguousarray(rgb[dy : height - dy, dx : width - dx])


TRANSFORMS: dict[str, Callable[[RGBImage], RGBImage]] = {
    "jpeg50": jpeg,
    "resize50": half,
    "flip": flip,
    "crop10": crop10,
}
