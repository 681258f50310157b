"""Real photos that installed packages ship, for the demo, the tests and the benchmarks.

- ``t1``: insightface's group photo (six people, 1280x886).
- ``tom_hanks``: insightface's aligned 112x112 crop of a well-known public figure.
- ``astronaut``: scikit-image's portrait of astronaut Eileen Collins (512x512).
- ``coffee``: scikit-image's cup of coffee (600x400), a photo without a face.

``TRANSFORMS`` are what an uploader's pipeline (or an evader) does to a photo: the tests and
benchmarks check that identities survive them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from guard.errors import ConfigurationError
from guard.media import RGBImage, decode_image, encode_image

SampleName = Literal["t1", "tom_hanks", "astronaut", "coffee"]


def _insightface_images() -> Path:
    try:
        import insightface
    except ImportError as exc:
        raise ConfigurationError(
            "the sample photos come from insightface; install it with "
            "`pip install --no-deps insightface==2.1` (make venv does)"
        ) from exc
    return Path(insightface.__file__).resolve().parent / "data" / "images"


def sample_bytes(name: SampleName) -> bytes:
    """The photo's file bytes (JPEG for t1, PNG for the others)."""
    if name in ("astronaut", "coffee"):
        from skimage import data

        photo: Callable[[], RGBImage] = getattr(data, name)
        return encode_image(photo(), "png")
    file = {"t1": "t1.jpg", "tom_hanks": "Tom_Hanks_54745.png"}[name]
    return (_insightface_images() / file).read_bytes()


def sample_rgb(name: SampleName) -> RGBImage:
    return decode_image(sample_bytes(name)).rgb


def jpeg(rgb: RGBImage, quality: int = 50) -> RGBImage:
    return decode_image(encode_image(rgb, "jpeg", quality=quality)).rgb


def half(rgb: RGBImage) -> RGBImage:
    height, width = rgb.shape[:2]
    return np.asarray(cv2.resize(rgb, (width // 2, height // 2), interpolation=cv2.INTER_AREA))


def flip(rgb: RGBImage) -> RGBImage:
    return np.ascontiguousarray(rgb[:, ::-1])


def crop10(rgb: RGBImage) -> RGBImage:
    """Cut 5 % from every side (a 10 % crop)."""
    height, width = rgb.shape[:2]
    dy, dx = round(height * 0.05), round(width * 0.05)
    return np.ascontiguousarray(rgb[dy : height - dy, dx : width - dx])


def rotate10(rgb: RGBImage) -> RGBImage:
    """Turn 10° about the centre, same canvas, edges reflected."""
    height, width = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 10, 1.0)
    turned = cv2.warpAffine(rgb, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)
    return np.asarray(turned, dtype=np.uint8)


TRANSFORMS: dict[str, Callable[[RGBImage], RGBImage]] = {
    "jpeg50": jpeg,
    "resize50": half,
    "flip": flip,
    "crop10": crop10,
}


_SKIMAGE_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "brick",
    "grass",
    "gravel",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "moon",
    "coins",
)
_INSIGHTFACE_PHOTOS = (
    "t1.jpg",
    "mask_black.jpg",
    "mask_blue.jpg",
    "mask_green.jpg",
    "mask_white.jpg",
)


def natural_photos() -> dict[str, RGBImage]:
    """Every real photograph the installed packages ship (19: scikit-image's and insightface's)."""
    from skimage import data

    photos: dict[str, RGBImage] = {}
    for name in _SKIMAGE_PHOTOS:
        pixels = np.asarray(getattr(data, name)())
        photos[name] = np.ascontiguousarray(
            np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels[..., :3]
        )
    stereo: Callable[[], tuple[RGBImage, RGBImage, object]] = data.stereo_motorcycle
    photos["motorcycle"] = np.asarray(stereo()[0])
    for file in _INSIGHTFACE_PHOTOS:
        photos[Path(file).stem] = decode_image((_insightface_images() / file).read_bytes()).rgb
    return photos


def photo_crops(count: int, side: int, *, seed: int = 0) -> list[RGBImage]:
    """``count`` distinct square crops (at least half the photo's short side) resized to ``side``.

    The first crop of each photo is its largest centred square; later ones are random.
    """
    photos = list(natural_photos().values())
    rng = np.random.default_rng(seed)
    crops: list[RGBImage] = []
    for index in range(count):
        photo = photos[index % len(photos)]
        height, width = photo.shape[:2]
        short = min(height, width)
        if index < len(photos):
            size, top, left = short, (height - short) // 2, (width - short) // 2
        else:
            size = int(rng.integers(short // 2, short + 1))
            top = int(rng.integers(0, height - size + 1))
            left = int(rng.integers(0, width - size + 1))
        square = photo[top : top + size, left : left + size]
        interpolation = cv2.INTER_AREA if size > side else cv2.INTER_CUBIC
        crops.append(np.asarray(cv2.resize(square, (side, side), interpolation=interpolation)))
    return crops
