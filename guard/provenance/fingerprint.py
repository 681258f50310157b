"""Perceptual fingerprints: a 64-bit pHash (``imagehash``) compared by Hamming distance.

The fallback when a watermark cannot be read: a re-encoded or resized copy stays within a few
bits of the original, an unrelated photo lands around 32 (docs/benchmarks.md). Two edits of the
same photo are also close, so a fingerprint match says "this picture or a sibling edit of it",
which is why ``verify`` tries the watermark first.
"""

from __future__ import annotations

import imagehash
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from guard.media import RGBImage

FINGERPRINT_ALGORITHM = "imagehash.phash.64"


def fingerprint(rgb: RGBImage) -> str:
    """The image's pHash as 16 hex digits."""
    return str(imagehash.phash(Image.fromarray(rgb), hash_size=8))


def hamming_distances(query: str, fingerprints: NDArray[np.uint64]) -> NDArray[np.uint8]:
    """Bits that differ between ``query`` and each of ``fingerprints`` (vectorised)."""
    return np.asarray(np.bitwise_count(fingerprints ^ np.uint64(int(query, 16))), dtype=np.uint8)
