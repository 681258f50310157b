"""invisible-watermark's three methods behind the :class:`Watermarker` protocol: the baselines.

They exist to be measured against (``bench/watermark.py``), not to stamp outputs: none of them has
an error-correcting code or a check field, so a detector always "reads" some bits and cannot say
whether a mark is there at all. ``detect`` therefore always reports ``found`` with the raw bits
and the number they spell; only a comparison with what was embedded says whether it is right.

rivaGan runs on a 256x256 copy and the full image receives the upscaled residual (decoding reads
a 256x256 copy too): at full resolution it costs ~6 s per 1024² image on this machine for the
same robustness (``../shared/notes/watermark.md``).

Needs the ``baselines`` extra (``pip install -e '.[baselines]'`` and
``pip install --no-deps invisible-watermark==0.2.0``; ``make venv`` does both).
"""

from __future__ import annotations

from typing import Any, Literal

import cv2
import numpy as np

from guard.errors import ConfigurationError
from guard.media import RGBImage
from guard.provenance.watermark import Detection

BaselineMethod = Literal["dwtDct", "dwtDctSvd", "rivaGan"]
BASELINE_METHODS: tuple[BaselineMethod, ...] = ("dwtDct", "dwtDctSvd", "rivaGan")
_RIVAGAN_SIDE = 256


def _imwatermark() -> Any:
    try:
        import imwatermark
    except ImportError as exc:
        raise ConfigurationError(
            "the invisible-watermark baselines need the 'baselines' extra: "
            "pip install -e '.[baselines]' && pip install --no-deps invisible-watermark==0.2.0"
        ) from exc
    return imwatermark


class InvisibleWatermark:
    """One of invisible-watermark's methods; carries the low ``bits`` bits of the record id."""

    def __init__(self, method: BaselineMethod) -> None:
        self._lib = _imwatermark()
        self.method = method
        self.algorithm = f"invisible-watermark.{method}"
        self.bits = 32 if method == "rivaGan" else 48
        if method == "rivaGan":
            self._lib.WatermarkEncoder.loadModel()

    def payload_bits(self, record_id: int) -> list[int]:
        return [(record_id >> (self.bits - 1 - i)) & 1 for i in range(self.bits)]

    def embed(self, rgb: RGBImage, record_id: int) -> RGBImage:
        encoder = self._lib.WatermarkEncoder()
        encoder.set_watermark("bits", self.payload_bits(record_id))
        if self.method != "rivaGan":
            bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            return np.asarray(cv2.cvtColor(encoder.encode(bgr, self.method), cv2.COLOR_BGR2RGB))
        height, width = rgb.shape[:2]
        small = cv2.resize(rgb, (_RIVAGAN_SIDE, _RIVAGAN_SIDE), interpolation=cv2.INTER_AREA)
        marked = cv2.cvtColor(
            encoder.encode(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), "rivaGan"), cv2.COLOR_BGR2RGB
        )
        residual = marked.astype(np.float32) - small.astype(np.float32)
        upscaled = cv2.resize(residual, (width, height), interpolation=cv2.INTER_CUBIC)
        return np.asarray(np.clip(np.rint(rgb.astype(np.float32) + upscaled), 0, 255), np.uint8)

    def detect(self, rgb: RGBImage) -> Detection:
        decoder = self._lib.WatermarkDecoder("bits", self.bits)
        if self.method == "rivaGan":
            side = (_RIVAGAN_SIDE, _RIVAGAN_SIDE)
            rgb = np.asarray(cv2.resize(rgb, side, interpolation=cv2.INTER_AREA), dtype=np.uint8)
        if rgb.shape[0] * rgb.shape[1] < 256 * 256:
            return Detection(found=False, algorithm=self.algorithm)
        bits = tuple(
            int(bit) for bit in decoder.decode(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), self.method)
        )
        record_id = int("".join(map(str, bits)), 2)
        return Detection(found=True, algorithm=self.algorithm, record_id=record_id, bits=bits)
