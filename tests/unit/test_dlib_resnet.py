"""The NumPy forward pass of dlib's face recognition ResNet gives dlib's own descriptors.

Chips come from real photos (insightface's t1.jpg and Tom Hanks crop, scikit-image's astronaut,
the last two also mirrored) through dlib's HOG detector, 5-point landmarks and
``get_face_chip(image, shape, 150, 0.25)``, as the dlib engine makes them. dlib's
``compute_face_descriptor(chip)`` is the reference: every component agrees to 1e-4 (measured:
under 1e-6), and every match decision the guard takes on them comes out the same.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from guard.errors import ConfigurationError
from guard.faces.dlib_resnet import DlibModelFormatError, ResNetDescriptor
from guard.faces.dlib_weights import import_dlib
from guard.faces.types import l2_normalise
from guard.samples import flip, sample_rgb

TOLERANCE = 1e-4
# The guard's cosine thresholds on L2-normalised dlib descriptors (registry, blocklist and
# drift, and the near-miss band under the blocklist's), and dlib's own Euclidean 0.6.
COSINE_THRESHOLDS = (0.95, 0.93, 0.90)
DLIB_DISTANCE = 0.6


@pytest.fixture(scope="module")
def weights_path() -> Path:
    _, weights = import_dlib()
    return Path(weights.face_recognition_model_location())


@pytest.fixture(scope="module")
def chips_and_reference(weights_path: Path) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """Aligned chips of every face in the sample photos and their variants, with dlib's
    descriptors for them."""
    dlib, weights = import_dlib()
    detector = dlib.get_frontal_face_detector()
    shapes = dlib.shape_predictor(weights.pose_predictor_five_point_model_location())
    model = dlib.face_recognition_model_v1(str(weights_path))
    chips: list[NDArray[np.uint8]] = []
    for name in ("t1", "tom_hanks", "astronaut"):
        photo = sample_rgb(name)
        for image in (photo,) if name == "t1" else (photo, flip(photo)):
            rects, _, _ = detector.run(image, 0, 0.0)
            for rect in rects:
                chip = dlib.get_face_chip(image, shapes(image, rect), 150, 0.25)
                chips.append(np.asarray(chip, dtype=np.uint8))
    assert len(chips) >= 10  # six faces in t1, one each in the others, and their mirrors
    reference = np.array([model.compute_face_descriptor(chip) for chip in chips])
    return np.stack(chips), reference


@pytest.fixture(scope="module")
def descriptor(weights_path: Path) -> ResNetDescriptor:
    return ResNetDescriptor.from_file(weights_path)


@pytest.fixture(scope="module")
def ours(
    descriptor: ResNetDescriptor,
    chips_and_reference: tuple[NDArray[np.uint8], NDArray[np.float64]],
) -> NDArray[np.float32]:
    return descriptor.compute(chips_and_reference[0])


def test_descriptors_match_dlib(
    weights_path: Path,
    chips_and_reference: tuple[NDArray[np.uint8], NDArray[np.float64]],
    ours: NDArray[np.float32],
) -> None:
    chips, reference = chips_and_reference
    assert ours.dtype == np.float32
    assert ours.shape == (len(chips), 128)
    difference = float(np.abs(ours - reference).max())
    assert difference <= TOLERANCE, f"max abs difference {difference:.3g}"
    # Cut into passes of two (the last one a chip alone), a batch gives the same numbers.
    in_pairs = ResNetDescriptor.from_file(weights_path, batch=2).compute(chips[:3])
    np.testing.assert_allclose(in_pairs, ours[:3], rtol=0, atol=1e-6)


def _decisions(descriptors: NDArray[Any]) -> list[tuple[bool, ...]]:
    unit = np.stack([l2_normalise(d) for d in descriptors])
    decisions = []
    for i, j in itertools.combinations(range(len(descriptors)), 2):
        cosine = float(unit[i] @ unit[j])
        distance = float(np.linalg.norm(descriptors[i].astype(np.float64) - descriptors[j]))
        decisions.append(
            (*(cosine >= t for t in COSINE_THRESHOLDS), distance < DLIB_DISTANCE),
        )
    return decisions


def test_match_decisions_are_dlibs(
    chips_and_reference: tuple[NDArray[np.uint8], NDArray[np.float64]],
    ours: NDArray[np.float32],
) -> None:
    theirs = _decisions(chips_and_reference[1])
    assert _decisions(ours) == theirs
    # The pairs span the thresholds: a face and its mirror match, strangers do not.
    assert any(pair[0] for pair in theirs)
    assert not all(pair[-1] for pair in theirs)


def test_compute_checks_its_input(descriptor: ResNetDescriptor) -> None:
    assert descriptor.compute(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 128)
    with pytest.raises(ValueError, match="uint8 RGB"):
        descriptor.compute(np.zeros((1, 150, 150, 3), np.float32))
    with pytest.raises(ValueError, match="uint8 RGB"):
        descriptor.compute(np.zeros((1, 112, 112, 3), np.uint8))


def _expect_refusal(path: Path, data: bytes, match: str) -> None:
    path.write_bytes(data)
    with pytest.raises(DlibModelFormatError, match=match) as caught:
        ResNetDescriptor.from_file(path)
    assert "is not dlib's face recognition ResNet" in str(caught.value)
    assert isinstance(caught.value, ConfigurationError)


def test_a_truncated_file_is_refused(weights_path: Path, tmp_path: Path) -> None:
    data = weights_path.read_bytes()
    bad = tmp_path / "truncated.dat"
    for cut in (0, 3, 300, len(data) // 2, len(data) - 1):
        _expect_refusal(bad, data[:cut], "the file ends inside")


def test_a_corrupt_file_is_refused(weights_path: Path, tmp_path: Path) -> None:
    data = weights_path.read_bytes()
    bad = tmp_path / "corrupt.dat"
    _expect_refusal(bad, data.replace(b"con_4", b"con_5", 1), "found 'con_5' where 'con_4'")
    _expect_refusal(bad, data + b"\x00", "data follows the network")
    # A weight overwritten with NaN (0xffffffff) inside the first con layer's parameters.
    at = data.index(b"con_4") + 16
    _expect_refusal(bad, data[:at] + b"\xff" * 4 + data[at + 4 :], "not finite")
    # Well-formed, but not this network: the first convolution with stride 1, a shortcut
    # pooled 3x3.
    stem = b"\x01\x20\x01\x07\x01\x07\x01\x02\x01\x02"  # 32 filters, 7x7, stride 2
    stride_one = stem[:-4] + b"\x01\x01\x01\x01"
    _expect_refusal(bad, data.replace(stem, stride_one, 1), "not 32 filters of 7x7, stride 2")
    pool = b"avg_pool_2\x01\x02\x01\x02"
    _expect_refusal(bad, data.replace(pool, b"avg_pool_2\x01\x03\x01\x03", 1), "not 2x2")


def test_another_network_is_refused(tmp_path: Path) -> None:
    _, weights = import_dlib()
    detector = Path(weights.cnn_face_detector_model_location()).read_bytes()
    _expect_refusal(tmp_path / "mmod.dat", detector, "where 'loss_metric_2' belongs")
    with pytest.raises(DlibModelFormatError, match="cannot read"):
        ResNetDescriptor.from_file(tmp_path / "missing.dat")
