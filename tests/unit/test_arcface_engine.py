"""The ArcFace engine loads operator-supplied models and never downloads anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from guard.config import Settings
from guard.errors import ConfigurationError
from guard.faces import create_face_engine
from guard.faces.arcface_engine import ArcFaceEngine
from tests.support.tiny_onnx import KPS_OFFSETS, write_detector, write_recogniser


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("arcface")
    write_detector(directory / "det_tiny.onnx")
    write_recogniser(directory / "w_tiny.onnx")
    return directory


def bright_cell_image(col: int, row: int) -> np.ndarray:
    rgb = np.zeros((640, 640, 3), dtype=np.uint8)
    rgb[row * 32 : row * 32 + 32, col * 32 : col * 32 + 32] = 255
    return rgb


def test_detects_decodes_and_embeds(model_dir: Path) -> None:
    engine = ArcFaceEngine(model_dir, device="cpu")
    assert engine.name == "arcface" and engine.dimension == 512
    faces = engine.detect_and_embed(bright_cell_image(col=10, row=8))
    assert len(faces) == 1
    [face] = faces
    # SCRFD anchors sit at the cell's top-left corner: (320, 256); the box reaches 2 x 32 px.
    assert face.bbox == (256, 192, 384, 320)
    expected_kps = [(320 + 32 * dx, 256 + 32 * dy) for dx, dy in KPS_OFFSETS]
    assert np.allclose(face.landmarks, expected_kps, atol=0.5)
    assert face.score == pytest.approx(1 / (1 + np.exp(-10 * (127.5 / 128 - 0.5))), abs=1e-3)
    assert face.embedding.dtype == np.float32 and face.embedding.shape == (512,)
    assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-5)


def test_embedding_is_deterministic_and_content_dependent(model_dir: Path) -> None:
    engine = ArcFaceEngine(model_dir, device="cpu")
    image = bright_cell_image(col=5, row=5)
    a = engine.detect_and_embed(image)[0].embedding
    b = engine.detect_and_embed(image.copy())[0].embedding
    assert np.array_equal(a, b)
    textured = image.copy()
    textured[170:180, 150:170] = (255, 0, 0)
    c = engine.detect_and_embed(textured)[0].embedding
    assert float(a @ c) < 0.9999


def test_empty_image_has_no_face(model_dir: Path) -> None:
    assert (
        ArcFaceEngine(model_dir, device="cpu").detect_and_embed(np.zeros((480, 640, 3), np.uint8))
        == []
    )


def test_settings_select_the_engine(model_dir: Path, tmp_path: Path) -> None:
    engine = create_face_engine(
        Settings(
            data_dir=tmp_path, face_engine="arcface", insightface_model_dir=model_dir, device="cpu"
        )
    )
    assert isinstance(engine, ArcFaceEngine)


def test_unset_directory_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="GUARD_INSIGHTFACE_MODEL_DIR"):
        create_face_engine(Settings(data_dir=tmp_path, face_engine="arcface"))


def test_missing_directory_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"GUARD_INSIGHTFACE_MODEL_DIR=.*does not exist"):
        ArcFaceEngine(tmp_path / "absent")


def test_directory_without_both_models_is_explained(tmp_path: Path, model_dir: Path) -> None:
    (tmp_path / "det.onnx").write_bytes((model_dir / "det_tiny.onnx").read_bytes())
    with pytest.raises(ConfigurationError, match="exactly one SCRFD detector and one ArcFace"):
        ArcFaceEngine(tmp_path)


def test_corrupt_model_file_is_explained(tmp_path: Path) -> None:
    (tmp_path / "broken.onnx").write_bytes(b"definitely not protobuf")
    with pytest.raises(ConfigurationError, match="not a readable ONNX model"):
        ArcFaceEngine(tmp_path)


def test_nothing_is_downloaded(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every download insightface can start goes through the names patched here (model_zoo binds
    ``download_onnx`` at import; storage binds ``download_file``); the last lines prove the
    patch is where insightface looks, so this test fails if the engine downloads anything."""
    from insightface.model_zoo import model_zoo
    from insightface.utils import storage

    attempts: list[tuple[object, ...]] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise AssertionError("the engine tried to download a model")

    monkeypatch.setattr(model_zoo, "download_onnx", refuse)
    monkeypatch.setattr(storage, "download_file", refuse)
    ArcFaceEngine(model_dir, device="cpu").detect_and_embed(bright_cell_image(3, 3))
    assert attempts == []

    with pytest.raises(AssertionError, match="tried to download"):
        model_zoo.get_model(str(tmp_path / "absent.onnx"), download=True)
    assert len(attempts) == 1
