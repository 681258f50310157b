"""dlib and its packaged weights, imported in one place.

face_recognition_models 0.3.0 (its last release) finds its weight files through
pkg_resources, which setuptools warns about on import; the lookup still works, and the warning
would otherwise open the output of every command that builds a guard.
"""

from __future__ import annotations

import warnings
from typing import Any


def import_dlib() -> tuple[Any, Any]:
    """``(dlib, face_recognition_models)``; ``ImportError`` if either is missing."""
    warnings.filterwarnings(
        "ignore",
        message="pkg_resources is deprecated",
        category=UserWarning,
        module="face_recognition_models",
    )
    import dlib
    import face_recognition_models

    return dlib, face_recognition_models
