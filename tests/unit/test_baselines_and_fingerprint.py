"""The invisible-watermark baselines behind our protocol, and the perceptual fingerprint."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from guard.media import RGBImage
from guard.provenance.baselines import BASELINE_METHODS, BaselineMethod, InvisibleWatermark
from guard.provenance.fingerprint import fingerprint, hamming_distances
from guard.samples import natural_photos, sample_rgb


@pytest.mark.parametrize("method", BASELINE_METHODS)
def test_baselines_round_trip_on_a_real_photo(method: BaselineMethod) -> None:
    marker = InvisibleWatermark(method)
    record_id = 0xA5A5A5A5 if method == "rivaGan" else 0xA5A5A5A5A5A5
    marked = marker.embed(sample_rgb("astronaut"), record_id)
    detection = marker.detect(marked)
    assert detection.bits is not None and len(detection.bits) == marker.bits
    read = np.array(detection.bits)
    sent = np.array(marker.payload_bits(record_id))
    assert np.mean(read == sent) >= 0.9


def _photo(name: str) -> RGBImage:
    return natural_photos()[name]


def test_fingerprints_stay_close_under_reencoding_and_resizing() -> None:
    rgb = _photo("coffee")
    height, width = rgb.shape[:2]
    small = np.asarray(cv2.resize(rgb, (width // 2, height // 2), interpolation=cv2.INTER_AREA))
    _, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 75]
    )
    reencoded = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    original, copy = fingerprint(rgb), fingerprint(np.asarray(reencoded))
    assert len(original) == 16
    assert hamming_distances(original, np.array([int(copy, 16)], dtype=np.uint64))[0] <= 4


def test_different_photos_are_far_apart() -> None:
    prints = {name: fingerprint(rgb) for name, rgb in natural_photos().items()}
    values = np.array([int(value, 16) for value in prints.values()], dtype=np.uint64)
    for name, value in prints.items():
        distances = hamming_distances(value, values)
        others = sorted(distances)[1:]  # the first is the photo itself, at 0
        assert min(others) > 8, name
