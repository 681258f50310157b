"""Real photos that installed packages ship, for the demo, the tests and the benchmarks.

- ``t1``: insightface's group photo (six people, 1280x886).
- ``tom_hanks``: insightface's aligned 112x112 crop of a well-known public figure.
- ``astronaut``: scikit-image's portrait of astronaut Eileen Collins (512x512).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from guard.errors import ConfigurationError
from guard.media import RGBImage, decode_image, encode_image

SampleName = Literal["t1", "tom_hanks", "astronaut"]


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
    if name == "astronaut":
        from skimage import data

        astronaut: Callable[[], RGBImage] = data.astronaut
        return encode_image(astronaut(), "png")
    file = {"t1": "t1.jpg", "tom_hanks": "Tom_Hanks_54745.png"}[name]
    return (_insightface_images() / file).read_bytes()


def sample_rgb(name: SampleName) -> RGBImage:
    return decode_image(sample_bytes(name)).rgb
