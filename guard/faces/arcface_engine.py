"""ArcFace engine: insightface's SCRFD detector and ArcFace recogniser, run by ONNX Runtime.

The models are never downloaded: the operator puts them in ``GUARD_INSIGHTFACE_MODEL_DIR`` (for
example the ``det_10g.onnx`` and ``w600k_r50.onnx`` of the buffalo_l pack). insightface's
pretrained packs are licensed for non-commercial research use only; a commercial deployment must
bring models it is licensed to use.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from guard.config import Settings
from guard.devices import DeviceSetting, onnx_providers
from guard.errors import ConfigurationError
from guard.faces.types import BBox, Face, clip_bbox, l2_normalise
from guard.media import RGBImage

SETTING = "GUARD_INSIGHTFACE_MODEL_DIR"


class ArcFaceEngine:
    """SCRFD detection + 5-point ArcFace alignment + ArcFace embedding (512-d for buffalo_l)."""

    name = "arcface"

    def __init__(
        self,
        model_dir: Path | None,
        *,
        det_size: int = 640,
        min_detection_score: float = 0.5,
        device: DeviceSetting = "auto",
    ) -> None:
        detector_file, recogniser_file = _find_models(model_dir)
        try:
            from insightface.model_zoo import model_zoo
            from insightface.utils import face_align
        except ImportError as exc:
            raise ConfigurationError(
                "the arcface engine needs the insightface package: "
                "pip install --no-deps insightface==2.1"
            ) from exc
        providers = onnx_providers(device)
        try:
            self._detector: Any = model_zoo.get_model(str(detector_file), providers=providers)
            self._recogniser: Any = model_zoo.get_model(str(recogniser_file), providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped failures
            raise ConfigurationError(
                f"ONNX Runtime could not load the models in {model_dir} ({exc}); check {SETTING}"
            ) from exc
        if getattr(self._detector, "taskname", None) != "detection":
            raise ConfigurationError(
                f"{detector_file} is not an SCRFD detector (it needs 6, 9, 10 or 15 outputs); "
                f"check {SETTING}"
            )
        if getattr(self._recogniser, "taskname", None) != "recognition":
            raise ConfigurationError(
                f"{recogniser_file} is not an ArcFace recogniser (1x3xNxN input, one output); "
                f"check {SETTING}"
            )
        if not self._detector.use_kps:
            raise ConfigurationError(
                f"{detector_file} predicts no keypoints; ArcFace alignment needs an SCRFD "
                "model with keypoints (*_kps)"
            )
        ctx_id = 0 if providers[0] == "CUDAExecutionProvider" else -1
        self._det_size = (det_size, det_size)
        self._detector.prepare(ctx_id, input_size=self._det_size, det_thresh=min_detection_score)
        self._recogniser.prepare(ctx_id)
        self._align = face_align.norm_crop
        self._crop_size = int(self._recogniser.input_size[0])
        self.dimension = int(self._recogniser.output_shape[-1])
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> ArcFaceEngine:
        return cls(
            settings.insightface_model_dir,
            det_size=settings.arcface_det_size,
            min_detection_score=settings.arcface_min_detection_score,
            device=settings.device,
        )

    def detect_and_embed(
        self, rgb: RGBImage, *, candidates: Sequence[BBox] | None = None
    ) -> list[Face]:
        # SCRFD searches the whole image in one pass: there is no second pass to steer.
        del candidates
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        height, width = bgr.shape[:2]
        with self._lock:
            boxes, keypoints = self._detector.detect(bgr, input_size=self._det_size)
            faces = []
            for box, kps in zip(boxes, keypoints, strict=True):
                crop = self._align(bgr, landmark=kps, image_size=self._crop_size)
                embedding = self._recogniser.get_feat(crop).reshape(-1)
                faces.append(
                    Face(
                        bbox=clip_bbox(box[0], box[1], box[2], box[3], width, height),
                        landmarks=tuple((float(x), float(y)) for x, y in kps),
                        score=float(box[4]),
                        embedding=l2_normalise(embedding),
                        engine=self.name,
                    )
                )
        return sorted(faces, key=lambda f: (f.bbox[0], f.bbox[1]))


def _find_models(model_dir: Path | None) -> tuple[Path, Path]:
    """The detector and recogniser ONNX files in ``model_dir``; nothing is ever downloaded."""
    if model_dir is None:
        raise ConfigurationError(
            f"GUARD_FACE_ENGINE=arcface needs {SETTING}: a directory with an SCRFD detector "
            "(e.g. det_10g.onnx) and an ArcFace recogniser (e.g. w600k_r50.onnx)"
        )
    if not model_dir.is_dir():
        raise ConfigurationError(f"{SETTING}={model_dir} does not exist or is not a directory")
    onnx_files = sorted(model_dir.glob("*.onnx"))
    signatures = {path: _signature(path) for path in onnx_files}
    detectors = [p for p, (outputs, _) in signatures.items() if outputs >= 5]
    # insightface's own routing rule: one output and a square input of 112, 128, ... pixels.
    # It keeps the pack's landmark (192 px) and gender/age (96 px) models out.
    recognisers = [
        p
        for p, (outputs, side) in signatures.items()
        if outputs == 1 and side is not None and side >= 112 and side % 16 == 0
    ]
    if len(detectors) != 1 or len(recognisers) != 1:
        raise ConfigurationError(
            f"{SETTING}={model_dir} must hold exactly one SCRFD detector and one ArcFace "
            f"recogniser .onnx file; found detectors {[p.name for p in detectors]} and "
            f"recognisers {[p.name for p in recognisers]}"
        )
    return detectors[0], recognisers[0]


def _signature(path: Path) -> tuple[int, int | None]:
    """(number of outputs, side of a square fixed input or None) of an ONNX file."""
    import onnx

    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:
        raise ConfigurationError(
            f"{path} is not a readable ONNX model ({exc}); check {SETTING}"
        ) from exc
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    square = len(dims) == 4 and dims[2] > 0 and dims[2] == dims[3]
    return len(model.graph.output), (int(dims[2]) if square else None)
