"""Where the ``lg-tiled-ss`` tile lattice lies in an image that was rotated, rescaled or cropped.

The tile repeats, so the whitened image's autocorrelation peaks at every lattice point
``a·v1 + b·v2``. One peak alone is often lost under a busy picture or a heavy JPEG, and picture
content and resampling leave peaks of their own; a lattice shows at *every* lattice point at
once. So the search sums the autocorrelation over eleven lattice points (the *harmonic score*),
first for every square lattice (rotation + scale: the shape a resize, crop or rotation leaves) on
a pixel grid of ``v1``, then refines the best few as free 2x2 lattices (aspect and shear too) to
a fraction of a pixel: folding tiles together over a whole image needs ``v1`` to well under a
pixel, or the tiles blur into each other. The reader then picks among these by reading them
(:class:`guard.provenance.watermark.TiledWatermarker`), and turns the best a little
(:func:`turned_lattices`) where the autocorrelation could not place it precisely.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.fft
from numpy.typing import NDArray

TILE = 64  # the tile's side in the canonical copy, as embedded

Float = NDArray[np.float32]
Geometry = NDArray[np.float64]
"""A 2x2 map from tile coordinates to canonical image coordinates; its columns are the tile's
x and y lattice vectors divided by :data:`TILE` (the identity: the geometry as embedded)."""

# Lattice vectors from 0.8 to 1.9 tiles long: the tile after a crop of up to ~47 % (longer) or
# after the picture was padded a little (shorter).
_SHORTEST, _LONGEST = 0.8 * TILE, 1.9 * TILE
_TOP_FREQUENCY = 0.18  # cycles per canonical pixel; the tile's cells are 2 px
# Lattice points summed by the harmonic score, one of each ± pair (the autocorrelation is
# symmetric). Points two tiles out still overlap the canonical copy for lattices up to ~1.4 tiles.
_HARMONICS = np.array(
    [(1, 0), (0, 1), (1, 1), (1, -1), (2, 0), (0, 2), (2, 1), (1, 2), (2, -1), (1, -2), (2, 2)],
    dtype=np.float64,
)


@dataclass(frozen=True)
class LatticeSearch:
    """The autocorrelation and the harmonic score of every square lattice, for one image."""

    auto: Float  # zero lag at (centre_y, centre_x)
    centre_y: int
    centre_x: int
    scores: Float  # harmonic score per v1 = (xs[j], ys[i]); -inf outside the annulus
    xs: NDArray[np.float64]
    ys: NDArray[np.float64]

    @classmethod
    def of(cls, white: Float) -> LatticeSearch:
        auto = _autocorrelation(white)
        centre_y, centre_x = white.shape[0], white.shape[1]
        reach = math.ceil(_LONGEST)
        xs = np.arange(0, reach + 1, dtype=np.float64)
        ys = np.arange(-reach, reach + 1, dtype=np.float64)
        x, y = np.meshgrid(xs, ys)
        length, angle = np.hypot(x, y), np.arctan2(y, x)
        # One v1 per square lattice: v1 within 45° of the x axis (v2 is v1 turned by 90°).
        inside = (length >= _SHORTEST) & (length <= _LONGEST) & (np.abs(angle) <= math.pi / 4)
        scores = np.zeros(x.shape, dtype=np.float32)
        for a, b in _HARMONICS:
            scores += _sample(auto, a * x - b * y + centre_x, a * y + b * x + centre_y)
        scores[~inside] = -np.inf
        return cls(auto, centre_y, centre_x, scores, xs, ys)

    def strongest(self) -> float:
        """The best square lattice's z-score: how clearly any lattice shows at all."""
        return self._z(float(np.max(self.scores)))

    def candidates(self, count: int) -> list[Geometry]:
        """The ``count`` strongest square lattices, each refined as a free 2x2 lattice.

        Every local maximum counts, however near another: after a rotation a phantom lattice
        shows unrotated at the tile's scale (even in unmarked pictures), two or three pixels from
        the real one, and must not hide it.
        """
        peaks = self.scores >= cv2.dilate(self.scores, np.ones((3, 3), np.uint8))
        peaks &= np.isfinite(self.scores)
        rows, cols = np.nonzero(peaks)
        order = np.argsort(self.scores[rows, cols])[::-1][:count]
        return [self._refined(np.array([self.xs[cols[k]], self.ys[rows[k]]])) for k in order]

    def _z(self, score: float) -> float:
        inside = self.scores[np.isfinite(self.scores)]
        return (score - float(np.median(inside))) / (float(np.std(inside)) + 1e-12)

    def _refined(self, v1: NDArray[np.float64]) -> Geometry:
        """Both lattice vectors to a fraction of a pixel, starting from the square lattice.

        Each round scores the lattice with each of its four coordinates moved by ±step (one
        batch of lookups) and moves every coordinate to the top of the parabola through its
        three scores; the step halves each round, down to a twentieth of a pixel.
        """
        vectors = np.concatenate([v1, [-v1[1], v1[0]]])
        for step in _REFINE_STEPS:
            moves = np.vstack([np.zeros(4), np.eye(4) * step, -np.eye(4) * step])
            centre, plus, minus = np.split(self._scores(vectors + moves), [1, 5])
            curvature = plus + minus - 2 * centre
            concave = curvature < 0
            shift = 0.5 * step * (minus - plus) / np.where(concave, curvature, -1.0)
            # Not concave (no peak in reach): climb one step towards the better side.
            climb = np.where(plus > minus, step, -step)
            vectors = vectors + np.clip(np.where(concave, shift, climb), -step, step)
        return np.asarray(vectors.reshape(2, 2).T / TILE, dtype=np.float64)

    def _scores(self, lattices: NDArray[np.float64]) -> NDArray[np.float64]:
        """Harmonic score of each row ``(x1, y1, x2, y2)`` of ``lattices``."""
        pairs = lattices.reshape(-1, 2, 2)  # lattice, vector, coordinate
        points = np.einsum("hv,lvc->lhc", _HARMONICS, pairs)
        values = _sample(self.auto, points[..., 0] + self.centre_x, points[..., 1] + self.centre_y)
        return np.asarray(values.sum(axis=1), dtype=np.float64)


_REFINE_STEPS = (0.6, 0.3, 0.15, 0.08, 0.05)


def turned_lattices(geometry: Geometry, degrees: tuple[float, ...]) -> list[Geometry]:
    """Square lattices at ``geometry``'s mean rotation and scale, turned by each of ``degrees``."""
    v1, v2 = geometry[:, 0], geometry[:, 1]
    angle = (math.atan2(v1[1], v1[0]) + math.atan2(-v2[0], v2[1])) / 2
    scale = (float(np.linalg.norm(v1)) + float(np.linalg.norm(v2))) / 2
    turned = []
    for offset in degrees:
        cos, sin = math.cos(angle + math.radians(offset)), math.sin(angle + math.radians(offset))
        turned.append(scale * np.array([[cos, -sin], [sin, cos]]))
    return turned


def _sample(image: Float, x: NDArray[np.float64], y: NDArray[np.float64]) -> Float:
    return np.asarray(
        cv2.remap(
            image,
            x.astype(np.float32),
            y.astype(np.float32),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0.0,
        )
    )


def _autocorrelation(white: Float) -> Float:
    """Channel-summed autocorrelation of the low band, per overlapping pixel (zero lag at the
    centre).

    Above :data:`_TOP_FREQUENCY`, what survives a JPEG of a reduced copy is mostly the JPEG's own
    noise and the picture's residue: leaving it out doubles a lattice's z-score on the hardest
    pictures (a dark face mask after rotation 2° + resize 0.5 + crop 10 % + JPEG 50: 4.5 → 11.7
    at 1024²). It also widens the peaks to ~6 px, so a phantom two or three pixels away can pull
    a lattice's fit by a degree: the reader turns the best lattice to make up for it.

    Dividing by the overlap keeps lags two tiles out (where little of the copy overlaps itself)
    on the same footing as short ones; the floor keeps the very longest from being pure noise.
    """
    height, width = white.shape[:2]
    padded = np.zeros((2 * height, 2 * width, white.shape[2]), dtype=np.float32)
    padded[:height, :width] = white
    spectrum = scipy.fft.rfft2(padded, axes=(0, 1))
    power = np.sum(spectrum.real**2 + spectrum.imag**2, axis=2)
    frequency = np.hypot(np.fft.fftfreq(2 * height)[:, None], np.fft.rfftfreq(2 * width)[None, :])
    power[frequency > _TOP_FREQUENCY] = 0.0
    auto = np.fft.fftshift(scipy.fft.irfft2(power, s=padded.shape[:2]))
    lag_y = np.abs(np.arange(2 * height) - height)
    lag_x = np.abs(np.arange(2 * width) - width)
    overlap = np.outer(np.maximum(height - lag_y, 0), np.maximum(width - lag_x, 0))
    return np.asarray(auto / np.maximum(overlap, height * width / 4), dtype=np.float32)


def fold(white: Float, geometry: Geometry) -> Float | None:
    """Resample ``white`` so the tile is TILE x TILE and axis-aligned, then average all tiles."""
    height, width = white.shape[:2]
    inverse = np.linalg.inv(geometry)
    corners = inverse @ np.array([[0, width, 0, width], [0, 0, height, height]], dtype=np.float64)
    origin = corners.min(axis=1)
    size = np.ceil(corners.max(axis=1) - origin).astype(int)
    if size.min() < TILE:
        return None
    out_w, out_h = (-(-int(s) // TILE) * TILE for s in size)
    # dst -> src: src = geometry @ (dst + origin)
    affine = np.hstack([geometry, (geometry @ origin)[:, None]]).astype(np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(white, affine, (out_w, out_h), flags=flags, borderValue=0.0)
    ones = np.ones((height, width), dtype=np.float32)
    valid = cv2.warpAffine(ones, affine, (out_w, out_h), flags=flags, borderValue=0.0)
    sums = warped.reshape(out_h // TILE, TILE, out_w // TILE, TILE, -1).sum(axis=(0, 2))
    counts = valid.reshape(out_h // TILE, TILE, out_w // TILE, TILE).sum(axis=(0, 2))
    if counts.min() < 1:
        return None
    return np.asarray(sums / counts[..., None], dtype=np.float32)
