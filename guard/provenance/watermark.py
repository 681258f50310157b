"""The guard's invisible watermark: a 48-bit record id that survives re-encoding, resizing, crops.

How it works (``lg-tiled-ss/1``), in one paragraph: the payload (48-bit record id + 16-bit check)
is BCH-coded (n=127, t=10) and spread over a 64x64 *tile* of smooth keyed ±1 cells, 8 cells per
code bit. The tile repeats over a canonical copy of the image (long side 256 px), is scaled back
up to full size and added along a luma + blue-yellow chroma direction at a strength set by a
target PSNR. The detector whitens the canonical copy, finds the tile lattice in its
autocorrelation (which gives scale, rotation and aspect change at once, whatever was cropped),
undoes that geometry, folds all tiles into one, finds the tile's offset where the code bits carry
the most energy, reads the 127 code bits by correlation and decodes them. A detection counts
only when BCH decodes *and* the check matches. docs/provenance.md has the whole story.

False positives are computed, not guessed (see :data:`FALSE_POSITIVE_BOUND`): on an unmarked image
the read bits are fair coin flips, so one geometry hypothesis decodes with probability
``V(127, 10) / 2^63`` and then passes the check with probability ``2^-16``; the detector tries
at most :data:`MAX_HYPOTHESES` geometries per image.

    >>> marker = TiledWatermarker()
    >>> marked = marker.embed(rgb, record_id=0xC0FFEE)            # doctest: +SKIP
    >>> record_id_text(marker.detect(jpeg(marked, 60)).record_id)  # doctest: +SKIP
    '000000c0ffee'
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import bchlib
import cv2
import numpy as np
import scipy.fft
from numpy.typing import NDArray

from guard.errors import InvalidInput
from guard.media import RGBImage

RECORD_ID_BITS = 48
CHECK_BITS = 16
_BCH_T = 10
_BCH_M = 7
CODE_BITS = 127  # 64 message bits + 63 parity bits of BCH(127, 64, t=10)

CANONICAL_SIDE = 256
TILE = 64
_CELL = 2
_SEED = b"likeness-guard/watermark/lg-tiled-ss/1"

MAX_HYPOTHESES = 8
ALGORITHM = "io.likenessguard.watermark.lg-tiled-ss.1"


def _false_positive_bound() -> float:
    decodable = sum(math.comb(CODE_BITS, i) for i in range(_BCH_T + 1))
    per_hypothesis = decodable / 2.0 ** (CODE_BITS - 64) * 2.0**-CHECK_BITS
    return MAX_HYPOTHESES * per_hypothesis


FALSE_POSITIVE_BOUND = _false_positive_bound()
"""Upper bound on the chance that an unmarked image yields a record id (about 2e-8)."""


def record_id_text(record_id: int) -> str:
    """The one form a record id takes outside the watermark's arithmetic: 12 lowercase hex
    digits (results, API bodies and headers, audit entries, manifests, the CLI), so an id read
    in one place can be searched for in every other."""
    return f"{record_id:0{RECORD_ID_BITS // 4}x}"


Float = NDArray[np.float32]


@dataclass(frozen=True)
class Detection:
    """What a watermark detector read from an image.

    ``found`` is true only when a payload decoded and passed its check; ``confidence`` is then
    ``1 - errors / (t + 1)`` (1.0: every code bit read right), else 0.0. ``bit_errors`` counts
    corrected code bits (``None`` when nothing decoded). ``bits`` are the raw bits read, for
    bit-accuracy measurements; baselines, which have no check field, report only those.
    """

    found: bool
    algorithm: str
    record_id: int | None = None
    confidence: float = 0.0
    bit_errors: int | None = None
    bits: tuple[int, ...] | None = None


class Watermarker(Protocol):
    """An invisible watermark: ``embed`` a record id, ``detect`` it later."""

    algorithm: str

    def embed(self, rgb: RGBImage, record_id: int) -> RGBImage: ...

    def detect(self, rgb: RGBImage) -> Detection: ...


def _require_record_id(record_id: int) -> None:
    if not 0 <= record_id < 2**RECORD_ID_BITS:
        raise InvalidInput(
            f"a watermark record id must fit in {RECORD_ID_BITS} bits, got {record_id}"
        )


class TiledWatermarker:
    """The guard's own watermark (``lg-tiled-ss/1``); see the module docstring."""

    algorithm = ALGORITHM

    def __init__(self, *, psnr_db: float = 41.0) -> None:
        self.psnr_db = psnr_db
        self._bch = bchlib.BCH(_BCH_T, m=_BCH_M)

    def encode_payload(self, record_id: int) -> NDArray[np.int8]:
        """The 127 code bits (0/1) that carry ``record_id``."""
        _require_record_id(record_id)
        message = record_id.to_bytes(6, "big") + _check(record_id)
        parity = self._bch.encode(message)
        bits = np.unpackbits(np.frombuffer(message + parity, dtype=np.uint8))
        return bits[:CODE_BITS].astype(np.int8)

    def decode_payload(self, bits: NDArray[np.int8]) -> tuple[int, int] | None:
        """``(record_id, corrected_errors)`` or ``None`` when the bits are not a valid payload."""
        padded = np.zeros(64 + self._bch.ecc_bytes * 8, dtype=np.uint8)
        padded[:CODE_BITS] = bits
        packed = np.packbits(padded).tobytes()
        message, parity = bytearray(packed[:8]), bytearray(packed[8:])
        errors = self._bch.decode(message, parity)
        if errors < 0:
            return None
        self._bch.correct(message, parity)
        record_id = int.from_bytes(message[:6], "big")
        if bytes(message[6:]) != _check(record_id):
            return None
        return record_id, errors

    def embed(self, rgb: RGBImage, record_id: int) -> RGBImage:
        height, width = rgb.shape[:2]
        symbols = self.encode_payload(record_id).astype(np.float32) * 2 - 1
        tile = np.tensordot(symbols, self._patterns.data, axes=1)
        tile /= float(np.sqrt(np.mean(tile**2)))
        canon_h, canon_w = _canonical_shape(height, width)
        reps = (-(-canon_h // TILE), -(-canon_w // TILE))
        canonical = np.tile(tile, reps)[:canon_h, :canon_w]
        pattern = np.asarray(cv2.resize(canonical, (width, height), interpolation=cv2.INTER_CUBIC))
        target_rms = 255.0 / 10 ** (self.psnr_db / 20)
        rms = float(cv2.norm(pattern, cv2.NORM_L2)) / math.sqrt(pattern.size)  # no squared copy
        gain = np.float32(target_rms / max(rms, 1e-6))
        # Band by band: the float copies of a whole 36 MP image took 1.5 GB; a band of rows
        # takes a few MB, and each pixel gets exactly the same arithmetic.
        marked = np.empty_like(rgb)
        for top in range(0, height, _EMBED_BAND_ROWS):
            rows = slice(top, top + _EMBED_BAND_ROWS)
            band = rgb[rows].astype(np.float32)
            band += gain * pattern[rows, :, None] * _EMBED_DIRECTION
            np.clip(np.rint(band, out=band), 0, 255, out=band)
            marked[rows] = band
        return marked

    def detect(self, rgb: RGBImage) -> Detection:
        """Read the record id, if a valid payload is there. ``bits`` holds the raw code bits read
        (before correction) under the geometry that decoded, else the most convincing one."""
        white = _whitened(rgb)
        # Most images arrive with their geometry intact: read that first and stop if it is clean.
        straight_reading = self._read(white, np.eye(2))
        straight = self._decode(straight_reading)
        if straight is not None and (straight.bit_errors or 0) <= _BCH_T // 2:
            return straight
        found = [straight] if straight is not None else []
        readings = self._readings(white, _geometries(white)[1:])
        for reading in readings[: MAX_HYPOTHESES - 1]:
            detection = self._decode(reading)
            if detection is not None:
                found.append(detection)
                if (detection.bit_errors or 0) <= _BCH_T // 2:
                    break
        if found:
            return max(found, key=lambda detection: detection.confidence)
        sharpest = readings[0] if readings else straight_reading
        return Detection(
            found=False,
            algorithm=self.algorithm,
            bits=_bits(sharpest) if sharpest is not None else None,
        )

    def _decode(self, reading: _Reading | None) -> Detection | None:
        if reading is None:
            return None
        bits = _bits(reading)
        decoded = self.decode_payload(np.array(bits, dtype=np.int8))
        if decoded is None:
            return None
        record_id, errors = decoded
        return Detection(
            found=True,
            algorithm=self.algorithm,
            record_id=record_id,
            confidence=1.0 - errors / (_BCH_T + 1),
            bit_errors=errors,
            bits=bits,
        )

    def _readings(self, white: Float, geometries: list[NDArray[np.float64]]) -> list[_Reading]:
        """Readings of the tile under each geometry, most convincing (sharpest offset) first."""
        readings = [reading for g in geometries if (reading := self._read(white, g)) is not None]
        readings.sort(key=lambda reading: reading.sharpness, reverse=True)
        return readings

    def _read(self, white: Float, geometry: NDArray[np.float64]) -> _Reading | None:
        folded = _fold(white, geometry)
        return None if folded is None else self._read_tile(folded)

    def _read_tile(self, folded: Float) -> _Reading:
        """Soft code bits from a folded tile (T x T x channels).

        Every code bit's correlation at every cyclic offset; the right offset is where the bits
        carry the most energy, whatever their values. Each channel's energy is measured against
        its own noise floor (the median offset), and the channels' bits are added weighted by
        their signal-to-noise ratio.
        """
        spectra = scipy.fft.rfft2(folded, axes=(0, 1))
        relative = []
        bits = []
        for channel in range(folded.shape[2]):
            spectrum = spectra[None, :, :, channel] * self._patterns.data_spectrum_conj
            correlations = scipy.fft.irfft2(spectrum, s=(TILE, TILE))
            energy = np.einsum("bij,bij->ij", correlations, correlations)
            noise = float(np.median(energy)) + 1e-12
            relative.append(energy / noise)
            bits.append(correlations / np.sqrt(noise / CODE_BITS))
        combined = np.sum(relative, axis=0)
        peak = int(np.argmax(combined))
        dy, dx = np.unravel_index(peak, combined.shape)
        soft = np.zeros(CODE_BITS, dtype=np.float64)
        for energy, normalised in zip(relative, bits, strict=True):
            soft += np.sqrt(max(float(energy[dy, dx]) - 1.0, 0.0)) * normalised[:, dy, dx]
        sharpness = float((combined.flat[peak] - np.median(combined)) / (np.std(combined) + 1e-9))
        return _Reading(np.asarray(soft, dtype=np.float32), sharpness)

    @cached_property
    def _patterns(self) -> _Patterns:
        return _Patterns.build()


def _bits(reading: _Reading) -> tuple[int, ...]:
    return tuple(int(bit) for bit in (reading.soft_bits > 0))


@dataclass(frozen=True)
class _Reading:
    soft_bits: Float
    sharpness: float  # how far the offset's energy stands above the other offsets (z-score)


@dataclass(frozen=True)
class _Patterns:
    """The keyed tile patterns, one per code bit (127 x T x T), on disjoint sets of cells."""

    data: Float

    @cached_property
    def data_spectrum_conj(self) -> NDArray[np.complex64]:
        return np.asarray(np.conj(scipy.fft.rfft2(self.data)), dtype=np.complex64)

    @classmethod
    def build(cls) -> _Patterns:
        rng = np.random.default_rng(np.frombuffer(hashlib.sha256(_SEED).digest(), dtype=np.uint32))
        cells_per_side = TILE // _CELL
        cells = cells_per_side * cells_per_side
        owner = rng.permutation(cells) % CODE_BITS
        chips = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=cells)
        data = np.zeros((CODE_BITS, TILE, TILE), dtype=np.float32)
        for bit in range(CODE_BITS):
            data[bit] = _smooth_cells(np.where(owner == bit, chips, 0.0), cells_per_side)
        return cls(data=data)


def _smooth_cells(values: NDArray[np.float64], cells_per_side: int) -> Float:
    grid = values.reshape(cells_per_side, cells_per_side).astype(np.float32)
    full = np.kron(grid, np.ones((_CELL, _CELL), dtype=np.float32))
    padded = np.pad(full, TILE // 2, mode="wrap")
    smoothed = cv2.GaussianBlur(padded, (0, 0), sigmaX=_CELL * 0.5)
    return np.asarray(smoothed[TILE // 2 : TILE // 2 + TILE, TILE // 2 : TILE // 2 + TILE])


def _check(record_id: int) -> bytes:
    return hashlib.sha256(_SEED + record_id.to_bytes(6, "big")).digest()[: CHECK_BITS // 8]


def _canonical_shape(height: int, width: int) -> tuple[int, int]:
    scale = CANONICAL_SIDE / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


# The pattern goes into luma and into the blue-yellow chroma axis, half the power each (both
# directions cost the same MSE per unit). Photos hide it under different noise in each: busy
# greyscale textures have almost none in chroma, colourful ones less in luma. The detector reads
# both and weighs them by how clearly each carries the mark (maximal-ratio combining).
_EMBED_BAND_ROWS = 256
_LUMA_AXIS = np.array([1.0, 1.0, 1.0], dtype=np.float32)
_CHROMA_AXIS = np.array([1.0, 1.0, -2.0], dtype=np.float32) / np.sqrt(2.0).astype(np.float32)
_EMBED_DIRECTION = (_LUMA_AXIS + _CHROMA_AXIS) / np.float32(np.sqrt(2.0))
_READ_AXES = np.stack([_LUMA_AXIS / 3, _CHROMA_AXIS / 3], axis=1)


def _canonical_channels(rgb: RGBImage) -> Float:
    """Luma and blue-yellow chroma at the canonical size, H x W x 2."""
    channels = np.asarray(rgb.astype(np.float32) @ _READ_AXES, dtype=np.float32)
    canon_h, canon_w = _canonical_shape(*channels.shape[:2])
    return np.asarray(cv2.resize(channels, (canon_w, canon_h), interpolation=cv2.INTER_AREA))


def _whitened(rgb: RGBImage) -> Float:
    canonical = _canonical_channels(rgb)
    return np.stack([_whiten(canonical[..., c]) for c in range(canonical.shape[2])], axis=2)


def _whiten(canonical: Float) -> Float:
    """Subtract an edge-preserving smoothing: the picture's edges go, the faint pattern stays."""
    residual = canonical - cv2.bilateralFilter(np.ascontiguousarray(canonical), 7, 6.0, 3.0)
    # Busy areas hide the pattern under more noise: weigh every pixel by its local noise level.
    local = np.sqrt(cv2.GaussianBlur(residual * residual, (0, 0), 4.0))
    floor = max(0.5 * float(np.median(local)), 0.05)
    return np.asarray(np.clip(residual / np.maximum(local, floor), -3.0, 3.0), dtype=np.float32)


_ZOOM_SWEEP = [np.eye(2) * 1.012**step for step in range(1, 35)]  # crops of up to a third


def _geometries(white: Float) -> list[NDArray[np.float64]]:
    """Candidate maps from tile to image coordinates: as embedded, the lattice seen, plain zooms.

    Only the first :data:`MAX_HYPOTHESES` readings (ranked by sharpness) are ever decoded, which is
    what bounds the false-positive rate; the zoom sweep catches crops too small or too busy for
    the lattice to show in the autocorrelation.
    """
    return [*_lattice_hypotheses(white), *_ZOOM_SWEEP]


def _lattice_hypotheses(white: Float) -> list[NDArray[np.float64]]:
    """Candidate 2x2 maps from tile coordinates to image coordinates, best first.

    The tile repeats, so the whitened image's autocorrelation peaks at the two lattice vectors; a
    resize, crop-and-rescale, rotation or aspect change moves those peaks and nothing else does.
    The identity comes first: most images are only re-encoded.
    """
    height, width = white.shape[:2]
    padded = np.zeros((2 * height, 2 * width, white.shape[2]), dtype=np.float32)
    padded[:height, :width] = white
    spectrum = np.fft.rfft2(padded, axes=(0, 1))
    power = np.sum(np.abs(spectrum) ** 2, axis=2)
    auto = np.fft.irfft2(power, s=padded.shape[:2])
    auto = np.fft.fftshift(auto)
    cy, cx = height, width
    pairs = [
        np.column_stack([vx, vy]) / TILE
        for vx in _peaks(auto, cy, cx, axis=1)
        for vy in _peaks(auto, cy, cx, axis=0)
    ]
    # A real resize or crop scales both axes alike and keeps them square: try those pairs first.
    pairs.sort(key=_distortion)
    return [np.eye(2), *pairs]


def _distortion(geometry: NDArray[np.float64]) -> float:
    vx, vy = geometry[:, 0], geometry[:, 1]
    nx, ny = float(np.linalg.norm(vx)), float(np.linalg.norm(vy))
    return abs(math.log(nx / ny)) + abs(float(vx @ vy)) / (nx * ny)


def _peaks(auto: NDArray[np.float64], cy: int, cx: int, *, axis: int) -> list[NDArray[np.float64]]:
    """The strongest autocorrelation peaks near the lattice vector along ``axis`` (x=1, y=0)."""
    lo, hi = int(0.8 * TILE), int(1.9 * TILE)
    if min(cy, cx) <= hi:
        return []
    along = np.arange(lo, hi)
    across = np.arange(-int(0.2 * hi), int(0.2 * hi) + 1)
    if axis == 1:
        window = auto[cy + across[:, None], cx + along[None, :]]
    else:
        window = auto[cy + along[:, None], cx + across[None, :]].T
    found: list[NDArray[np.float64]] = []
    work = window.copy()
    for _ in range(3):
        i, j = np.unravel_index(int(np.argmax(work)), work.shape)
        a_off, b_off = _subpixel(window, int(i), int(j))
        vec_along, vec_across = along[j] + b_off, across[i] + a_off
        found.append(
            np.array([vec_along, vec_across]) if axis == 1 else np.array([vec_across, vec_along])
        )
        work[max(0, i - 3) : i + 4, max(0, j - 3) : j + 4] = -np.inf
    return found


def _subpixel(window: NDArray[np.float64], i: int, j: int) -> tuple[float, float]:
    def offset(minus: float, centre: float, plus: float) -> float:
        denominator = minus - 2 * centre + plus
        return 0.0 if denominator >= 0 else float(0.5 * (minus - plus) / denominator)

    di = (
        offset(window[i - 1, j], window[i, j], window[i + 1, j])
        if 0 < i < window.shape[0] - 1
        else 0.0
    )
    dj = (
        offset(window[i, j - 1], window[i, j], window[i, j + 1])
        if 0 < j < window.shape[1] - 1
        else 0.0
    )
    return di, dj


def _fold(white: Float, geometry: NDArray[np.float64]) -> Float | None:
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
