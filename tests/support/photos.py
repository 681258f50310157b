"""The real photos cut the way the tests use them."""

from __future__ import annotations

from guard.media import encode_image
from guard.samples import SampleName, sample_rgb

# The woman on the left of t1.jpg: a tight crop to enroll, a wider one to edit.
ENROLL = (230, 450, 20, 230)
PORTRAIT = (150, 886, 0, 262)


def crop(name: SampleName, box: tuple[int, int, int, int]) -> bytes:
    """``name`` cut to ``box`` (y0, y1, x0, x1), as JPEG."""
    y0, y1, x0, x1 = box
    return encode_image(sample_rgb(name)[y0:y1, x0:x1], "jpeg")
