"""The fingerprint's information floor (issue 17): flat, smooth and tiny pictures identify
nothing; real photos do. The whole measurement is tests/integration/test_false_provenance.py."""

from __future__ import annotations

import imagehash
import numpy as np
import pytest
from PIL import Image

from guard.provenance.fingerprint import (
    MIN_INFORMATION,
    MIN_SIDE,
    Fingerprint,
    fingerprint,
    information,
    measure,
)
from guard.samples import natural_photos, sample_rgb


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return natural_photos()


def test_the_fingerprint_is_imagehash_phash(photos: dict[str, np.ndarray]) -> None:
    flat = np.full((40, 60, 3), 77, np.uint8)
    for rgb in [*photos.values(), flat]:
        assert measure(rgb).value == str(imagehash.phash(Image.fromarray(rgb)))
        assert fingerprint(rgb) == measure(rgb).value


@pytest.mark.parametrize("colour", [(0, 0, 0), (128, 128, 128), (255, 255, 255), (255, 0, 0)])
@pytest.mark.parametrize("shape", [(1, 1), (64, 64), (300, 400)])
def test_flat_pictures_decide_nothing(colour: tuple[int, int, int], shape: tuple[int, int]) -> None:
    flat = np.full((*shape, 3), colour, np.uint8)
    measured = measure(flat)
    assert measured.information <= 1 and not measured.identifying
    # Why it matters: they all share one of two fingerprints, whatever their colour or size.
    assert measured.value in ("8000000000000000", "0000000000000000")


def test_gradients_and_stripes_stay_below_the_floor() -> None:
    ramp = np.linspace(0, 255, 256)
    horizontal = np.repeat(np.tile(ramp, (256, 1))[..., None], 3, axis=2).astype(np.uint8)
    yy, xx = np.mgrid[0:256, 0:256]
    radial = np.hypot(yy - 128, xx - 128)
    radial = np.repeat((255 * radial / radial.max())[..., None], 3, axis=2).astype(np.uint8)
    stripes = np.repeat((((xx // 16) % 2) * 255)[..., None], 3, axis=2).astype(np.uint8)
    for picture in (horizontal, horizontal.transpose(1, 0, 2), radial, stripes):
        assert information(picture) < MIN_INFORMATION


def test_pictures_smaller_than_the_hash_identify_nothing_however_busy() -> None:
    rng = np.random.default_rng(0)
    for side in range(1, MIN_SIDE):
        assert information(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)) == 0
    assert measure(rng.integers(0, 256, (MIN_SIDE, 200, 3), dtype=np.uint8)).identifying


def test_real_photos_clear_the_floor(photos: dict[str, np.ndarray]) -> None:
    for name, rgb in [*photos.items(), ("tom_hanks", sample_rgb("tom_hanks"))]:
        assert measure(rgb).identifying, (name, information(rgb))


def test_identifying_is_the_floor() -> None:
    assert Fingerprint("0" * 16, MIN_INFORMATION).identifying
    assert not Fingerprint("0" * 16, MIN_INFORMATION - 1).identifying
