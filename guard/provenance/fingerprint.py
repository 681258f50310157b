"""Perceptual fingerprints: a 64-bit pHash (``imagehash``) compared by Hamming distance, and how
much of it the picture actually decides.

The fallback when a watermark cannot be read: a re-encoded or resized copy stays within a few
bits of the original, an unrelated photo lands around 32 (docs/benchmarks.md). Two edits of the
same photo are also close, so a fingerprint match says "this picture or a sibling edit of it",
which is why ``verify`` tries the watermark first.

**The information floor** (issue 17). pHash shrinks the grey image to 32x32, takes its DCT and
sets one bit per coefficient of the lowest 8x8 frequencies: "above the block's median". On a
picture with little in it most of those coefficients sit *at* the median (a flat picture's are
all zero, a gradient has a handful that are not), and their bits are whatever rounding makes of
them — the same bits for every picture of that kind. So every flat picture had one fingerprint
(``8000000000000000``, a 1x1 stamp's too) and "verified" as any other. :func:`information`
counts the coefficients the picture decides: those at least :data:`DECISIVE_MARGIN` from the
median. A fingerprint with fewer than :data:`MIN_INFORMATION` of them identifies nothing: a
stamp's is stored as such and never matched, a verified picture's is never looked up. So is one
of a picture smaller than :data:`MIN_SIDE` pixels, whose "fine detail" is the resampling
filter's.
"""

from __future__ import annotations

from dataclasses import dataclass

import imagehash
import numpy as np
import scipy.fftpack
from numpy.typing import NDArray
from PIL import Image

from guard.media import RGBImage

FINGERPRINT_ALGORITHM = "imagehash.phash.64"

_HASH_SIDE = 8  # imagehash.phash's hash_size: an 8x8 block of frequencies, 64 bits
_THUMB_SIDE = 32  # hash_size * highfreq_factor (4): the grey thumbnail the DCT runs on

# A coefficient this far from the block's median is the picture's, not rounding's. The DCT is
# imagehash's (scipy's unnormalised type II on both axes), where a cosine of amplitude `a` grey
# levels over the 32x32 thumbnail gives a coefficient of 1024·a: 256 is a quarter of a grey
# level, 14x the spread the thumbnail's own rounding to whole grey levels puts on a coefficient
# (σ ≈ 18), and far below what a photo's structure gives.
DECISIVE_MARGIN = 256.0
# The floor, from bench/provenance_false_recovery.py (docs/provenance.md has the table): flat
# pictures decide 0–1 coefficients; gradients, stripes, checkerboards, two-tone splits and faint
# noise at most 17. The 24 whole real photos decide 37–64 (small LFW faces 58–64), and 600 of
# the 608 never-stamped photos, crops and transformed copies reach 24 (the 8 below are crops of
# a face mask that is mostly black). 24 leaves 7 coefficients of margin above every synthetic
# picture measured and keeps 174 of the 175 transformed copies of stamped photos that the
# fingerprint recovered before (the one lost: a brick texture at half contrast).
MIN_INFORMATION = 24
# pHash reads 8 frequencies along each axis; a picture narrower than 8 pixels cannot hold them
# (what the 32x32 thumbnail shows there is the upscaling filter's ringing, the same for every
# picture of that size), so its fingerprint identifies nothing however "busy" it looks.
MIN_SIDE = _HASH_SIDE


@dataclass(frozen=True)
class Fingerprint:
    """A picture's pHash (16 hex digits) and how many of its 64 coefficients it decides."""

    value: str
    information: int

    @property
    def identifying(self) -> bool:
        """Whether a match on this fingerprint says anything about where a picture came from."""
        return self.information >= MIN_INFORMATION


def _low_frequencies(rgb: RGBImage) -> NDArray[np.float64]:
    """The 8x8 block pHash thresholds, computed exactly as ``imagehash.phash`` does."""
    thumb = (
        Image.fromarray(rgb)
        .convert("L")
        .resize((_THUMB_SIDE, _THUMB_SIDE), Image.Resampling.LANCZOS)
    )
    pixels = np.asarray(thumb)
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)
    return np.asarray(dct[:_HASH_SIDE, :_HASH_SIDE], dtype=np.float64)


def measure(rgb: RGBImage) -> Fingerprint:
    """The fingerprint of ``rgb`` with its information (one thumbnail, one DCT)."""
    block = _low_frequencies(rgb)
    median = float(np.median(block))
    value = str(imagehash.ImageHash(block > median))
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_SIDE:
        return Fingerprint(value, 0)
    decided = int(np.count_nonzero(np.abs(block - median) >= DECISIVE_MARGIN))
    return Fingerprint(value, decided)


def fingerprint(rgb: RGBImage) -> str:
    """The image's pHash as 16 hex digits."""
    return measure(rgb).value


def information(rgb: RGBImage) -> int:
    """How many of the fingerprint's 64 coefficients ``rgb`` decides (0 below ``MIN_SIDE``)."""
    return measure(rgb).information


def hamming_distances(query: str, fingerprints: NDArray[np.uint64]) -> NDArray[np.uint8]:
    """Bits that differ between ``query`` and each of ``fingerprints`` (vectorised)."""
    return np.asarray(np.bitwise_count(fingerprints ^ np.uint64(int(query, 16))), dtype=np.uint8)
