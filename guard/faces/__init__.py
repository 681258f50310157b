"""Face detection and embedding behind one protocol.

    >>> from guard.faces import create_face_engine
    >>> engine = create_face_engine(settings)          # doctest: +SKIP
    >>> faces = engine.detect_and_embed(decoded.rgb)   # doctest: +SKIP
    >>> faces[0].bbox, faces[0].embedding.shape        # doctest: +SKIP
    ((65, 284, 169, 388), (128,))

Engines: ``dlib`` (default; weights from the ``face_recognition_models`` package) and ``arcface``
(insightface SCRFD + ArcFace ONNX models from ``GUARD_INSIGHTFACE_MODEL_DIR``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from guard.faces.boxes import same_face
from guard.faces.dlib_weights import import_dlib
from guard.faces.types import BBox, Face, FaceEngine, l2_normalise

if TYPE_CHECKING:
    from guard.config import Settings

__all__ = [
    "BBox",
    "Face",
    "FaceEngine",
    "create_face_engine",
    "import_dlib",
    "l2_normalise",
    "same_face",
]


def create_face_engine(settings: Settings) -> FaceEngine:
    """The engine named by ``GUARD_FACE_ENGINE``, loaded once (loading takes ~0.6 s for dlib)."""
    if settings.face_engine == "arcface":
        from guard.faces.arcface_engine import ArcFaceEngine

        return ArcFaceEngine.from_settings(settings)
    from guard.faces.dlib_engine import DlibEngine

    return DlibEngine.from_settings(settings)
