"""The guard's invisible watermark: a 48-bit record id that survives re-encoding, resizing, crops.

How it works (``lg-tiled-ss/1``), in one paragraph: the payload (48-bit record id + 16-bit check)
is BCH-coded (n=127, t=10) and spread over a 64x64 *tile* of smooth keyed ±1 cells, 8 cells per
code bit. The tile repeats over a canonical copy of the image (long side 256 px), is scaled back
up to full size and added along a luma + blue-yellow chroma direction at a strength set by a
target PSNR. The detector whitens the canonical copy and reads it as embedded (a *reading*: fold
all tiles into one under a geometry, find the tile's offset where the code bits carry the most
energy, correlate the 127 code bits). Failing that, it finds candidate tile lattices in the
autocorrelation (rotation, scale and aspect at once, whatever was cropped:
:mod:`guard.provenance.watermark_geometry`), reads the strongest few, turns the best one a little
when none reads clearly, and decodes the sharpest reading: BCH first, then soft decoding. A
cheap first pass (the reading as embedded and the autocorrelation) answers "no mark" for
pictures that show neither. A detection counts only when a payload decodes *and* its check
matches. docs/provenance.md has the story.

False positives are computed, not guessed (see :data:`FALSE_POSITIVE_BOUND`): on an unmarked
image the signs of the bits read are fair coin flips whatever their magnitudes, so a reading is
accepted only if its bits fall in a region of known size around one of the 2^48 valid codewords:
the BCH decoding sphere (``V(127, 10)`` words) plus the soft-decoding region (at most
:data:`SOFT_REGION` words, chosen per reading from the magnitudes). The detector decodes at most
:data:`MAX_READINGS` readings per image.

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
from guard.provenance.watermark_geometry import (
    TILE,
    Geometry,
    LatticeSearch,
    fold,
    turned_lattices,
)

RECORD_ID_BITS = 48
CHECK_BITS = 16
_BCH_T = 10
_BCH_M = 7
CODE_BITS = 127  # 64 message bits + 63 parity bits of BCH(127, 64, t=10)

CANONICAL_SIDE = 256
_CELL = 2
_SEED = b"likeness-guard/watermark/lg-tiled-ss/1"

ALGORITHM = "io.likenessguard.watermark.lg-tiled-ss.1"

MAX_READINGS = 2
"""Readings decoded per image at most: the geometry as embedded, then the sharpest lattice."""
HARD_REGION = sum(math.comb(CODE_BITS, i) for i in range(_BCH_T + 1))
"""Error patterns BCH decoding accepts around a codeword: every one of at most t bits."""
SOFT_REGION = 3 * HARD_REGION
"""Further error patterns soft decoding may accept around a codeword, per reading."""


def _false_positive_bound() -> float:
    valid_words = 2.0**RECORD_ID_BITS  # codewords whose check matches their record id
    per_reading = valid_words * (HARD_REGION + SOFT_REGION) / 2.0**CODE_BITS
    return MAX_READINGS * per_reading


FALSE_POSITIVE_BOUND = _false_positive_bound()
"""Upper bound on the chance that an unmarked image yields a record id (3.0e-9, as in v1's
first detector: 8 hard-decoded readings then, 2 readings with 4 times the region each now)."""


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
    ``1 - errors / (t + 1)`` (1.0: every code bit read right; a payload only soft decoding found,
    with more than t errors, reports ``0.5 / (t + 1)``), else 0.0. ``bit_errors`` counts
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

    def __init__(self, *, psnr_db: float = 41.0, first_pass: bool = True) -> None:
        """``first_pass=False`` searches every image in full, even one that shows no sign of a
        mark (the benchmark measures what the first pass misses that way)."""
        self.psnr_db = psnr_db
        self.first_pass = first_pass
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
        (before correction) from the reading that decoded, else from the sharpest one."""
        white = _whitened(rgb)
        # Most images arrive with their geometry intact: read that first.
        as_embedded = self._read(white, np.eye(2))
        detection = self._decode(as_embedded)
        if detection is not None:
            return detection
        lattice = LatticeSearch.of(white)
        sharpest = as_embedded
        if not self.first_pass or may_carry_mark(as_embedded, lattice):
            # The second and last reading decoded (MAX_READINGS): chosen by sharpness, which
            # is blind to the bits' signs, so the false-positive arithmetic holds.
            lattice_reading = self._sharpest_lattice_reading(white, lattice)
            detection = self._decode(lattice_reading)
            if detection is not None:
                return detection
            sharpest = lattice_reading or as_embedded
        return Detection(
            found=False,
            algorithm=self.algorithm,
            bits=_bits(sharpest) if sharpest is not None else None,
        )

    def _sharpest_lattice_reading(self, white: Float, lattice: LatticeSearch) -> _Reading | None:
        """The sharpest reading of the strongest few lattices and, unless one is clearly the
        mark, of the square lattices turned around the best of them.

        The autocorrelation's peaks are a few pixels wide and a phantom nearby can pull them:
        after rotation 2° + resize + JPEG the fit often lands halfway between the lattice and an
        unrotated phantom, a degree off, where the tiles blur when folded.
        """
        best: tuple[_Reading, Geometry] | None = None
        for geometry in lattice.candidates(_LATTICE_CANDIDATES):
            reading = self._read(white, geometry)
            if reading is not None and (best is None or reading.sharpness > best[0].sharpness):
                best = (reading, geometry)
            if best is not None and best[0].sharpness >= _CLEAR_SHARPNESS:
                return best[0]
        if best is None:
            return None
        faint = best[0].sharpness < _MIN_TURNED_SHARPNESS
        if self.first_pass and faint and lattice.strongest() < _STRONG_LATTICE:
            return best[0]
        turned = [self._read(white, geometry) for geometry in turned_lattices(best[1], _TURNS)]
        return max(
            [best[0], *(reading for reading in turned if reading is not None)],
            key=lambda reading: reading.sharpness,
        )

    def _decode(self, reading: _Reading | None) -> Detection | None:
        if reading is None:
            return None
        bits = _bits(reading)
        hard = np.array(bits, dtype=np.int8)
        decoded = self.decode_payload(hard) or self._soft_decode(reading.soft_bits, hard)
        if decoded is None:
            return None
        record_id, errors = decoded
        return Detection(
            found=True,
            algorithm=self.algorithm,
            record_id=record_id,
            confidence=_confidence(errors),
            bit_errors=errors,
            bits=bits,
        )

    def _soft_decode(self, soft: Float, hard: NDArray[np.int8]) -> tuple[int, int] | None:
        """A payload whose codeword differs from ``hard`` only where the reading was least sure.

        The acceptance region is every error pattern whose summed reliability (in
        :func:`_reliability_units`) is at most :func:`_soft_radius`: the largest radius whose
        region holds at most :data:`SOFT_REGION` patterns, counted exactly for this reading.
        Candidates come from Chase decoding (BCH after flipping each subset of the
        :data:`_CHASE_BITS` least reliable bits); whatever the search finds, only codewords
        inside the region are accepted, so the search's extent does not enter the bound.
        """
        weights = _reliability_units(np.abs(soft))
        radius = _soft_radius(weights)
        if radius < 0:
            return None
        least_reliable = np.argsort(weights, kind="stable")[:_CHASE_BITS]
        best: tuple[int, int, int] | None = None  # distance, record id, errors
        tried: set[int] = set()
        for flips in _CHASE_FLIPS:
            trial = hard.copy()
            trial[least_reliable[flips]] ^= 1
            decoded = self.decode_payload(trial)
            if decoded is None or decoded[0] in tried:
                continue
            record_id = decoded[0]
            tried.add(record_id)
            wrong = self.encode_payload(record_id) != hard
            distance = int(weights[wrong].sum())
            if distance <= radius and (best is None or distance < best[0]):
                best = (distance, record_id, int(wrong.sum()))
        return None if best is None else (best[1], best[2])

    def _read(self, white: Float, geometry: Geometry) -> _Reading | None:
        folded = fold(white, geometry)
        return None if folded is None else self._read_tile(folded)

    def _read_tile(self, folded: Float) -> _Reading:
        """Soft code bits from a folded tile (T x T x channels).

        Every code bit's correlation at every cyclic offset; the right offset is where the bits
        carry the most energy, whatever their values. Each channel's energy is measured against
        its own noise floor (the median offset), and the channels' bits are added weighted by
        their signal-to-noise ratio.
        """
        spectra = scipy.fft.rfft2(folded, axes=(0, 1))
        patterns = self._patterns.data_spectrum_conj
        relative = []
        bits = []
        for channel in range(folded.shape[2]):
            spectrum = spectra[None, :, :, channel] * patterns
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


# --- Soft decoding ------------------------------------------------------------------------------

_CHASE_BITS = 8
# Every non-empty subset of the least reliable bits, as index masks (the empty one is plain BCH).
_CHASE_FLIPS = [
    np.array([(mask >> bit) & 1 for bit in range(_CHASE_BITS)], dtype=bool)
    for mask in range(1, 2**_CHASE_BITS)
]
# Reliabilities are counted in units of 1/64 of the median one; the count of error patterns is
# kept for summed reliabilities up to 64 median bits, far past any radius SOFT_REGION allows.
_UNITS_PER_MEDIAN = 64
_MAX_UNITS = 64 * _UNITS_PER_MEDIAN


def _reliability_units(magnitudes: Float) -> NDArray[np.int64]:
    """Each bit's reliability as a whole number of units, rounded down.

    Rounding down can only enlarge the region counted for a radius, never hide part of it.
    """
    unit = float(np.median(magnitudes)) / _UNITS_PER_MEDIAN
    if unit <= 0:
        return np.zeros(magnitudes.shape, dtype=np.int64)
    return np.asarray(np.floor(magnitudes / unit), dtype=np.int64)


def _soft_radius(weights: NDArray[np.int64]) -> int:
    """The largest summed reliability whose error patterns number at most SOFT_REGION (-1: none).

    ``counts[w]`` is the number of subsets of the bits whose weights sum to exactly ``w``
    (a knapsack count, in floats: exact far beyond the 7e14 that matters here).
    """
    counts = np.zeros(_MAX_UNITS + 1, dtype=np.float64)
    counts[0] = 1.0
    for weight in weights:
        if weight == 0:
            counts *= 2.0
        elif weight <= _MAX_UNITS:
            counts[weight:] += counts[:-weight].copy()
    within = np.nonzero(np.cumsum(counts) <= SOFT_REGION)[0]
    return int(within[-1]) if within.size else -1


def _confidence(errors: int) -> float:
    """``1 - errors / (t + 1)``; a payload only soft decoding found (more than t bits wrong)
    reports half the lowest confidence BCH alone can give."""
    return 1.0 - min(errors, _BCH_T + 0.5) / (_BCH_T + 1)


# --- The cheap first pass -----------------------------------------------------------------------

_LATTICE_CANDIDATES = 4
# A reading this sharp is the mark (wrong lattices and unmarked pictures read 3 to 6): no need
# to look further. When the first pass is on, the best lattice is turned only if it reads above
# the minimum or the lattice shows strongly (a dark mask after the combined attack: 3.9 and 15).
_CLEAR_SHARPNESS = 12.0
_MIN_TURNED_SHARPNESS = 5.0
_STRONG_LATTICE = 8.0
_TURNS = (-1.2, -0.8, -0.4, 0.0, 0.4, 0.8, 1.2)  # degrees: a fifth of a degree off at worst
# A mark shows either in the reading as embedded (the offset's energy stands out) or as a lattice
# in the autocorrelation. A picture with neither is answered without reading any lattice; one
# whose lattices all read no sharper than an unmarked picture does is not searched further.
# docs/benchmarks.md has what each costs and what the first pass misses (measured: nothing
# the full search finds).
_MIN_SHARPNESS = 6.0
_MIN_LATTICE_STRENGTH = 4.0


def may_carry_mark(as_embedded: _Reading | None, lattice: LatticeSearch) -> bool:
    """Whether a mark could be there at all, from what the first pass already computed."""
    sharp = as_embedded is not None and as_embedded.sharpness >= _MIN_SHARPNESS
    return sharp or lattice.strongest() >= _MIN_LATTICE_STRENGTH
