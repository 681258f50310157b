"""What a face engine returns, and the protocol every engine implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from guard.media import RGBImage

Embedding = NDArray[np.float32]
BBox = tuple[int, int, int, int]


def l2_normalise(vector: NDArray[np.floating]) -> Embedding:
    """Unit-length float32 copy of ``vector`` (inner product then equals cosine similarity)."""
    as32 = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(as32))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError("cannot normalise a zero or non-finite embedding")
    return as32 / norm


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face. ``embedding`` is biometric data: it never leaves the process in
    responses, logs or audit entries (it is kept out of ``repr`` for that reason)."""

    bbox: BBox  # x0, y0, x1, y1 in pixels, clipped to the image
    landmarks: tuple[tuple[float, float], ...]
    score: float
    embedding: Embedding = field(repr=False)
    engine: str


class FaceEngine(Protocol):
    """Finds every face in an RGB image and embeds it (L2-normalised float32)."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def detect_and_embed(
        self, rgb: RGBImage, *, candidates: Sequence[BBox] | None = None
    ) -> list[Face]:
        """Every face in ``rgb``. ``candidates`` are places where a second detector saw a face:
        an engine whose detector misses some faces (turned ones, for dlib's HOG) looks harder
        there. ``None`` says no second detector ran, so the engine must search everywhere."""
        ...


def clip_bbox(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> BBox:
    """Round a box to pixels and clip it to a ``width`` x ``height`` image."""
    return (
        int(np.clip(round(x0), 0, width)),
        int(np.clip(round(y0), 0, height)),
        int(np.clip(round(x1), 0, width)),
        int(np.clip(round(y1), 0, height)),
    )
