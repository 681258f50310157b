"""Building the dlib engine (every command that opens a guard does) prints no warning: the
pkg_resources deprecation that face_recognition_models triggers on import is filtered where
the engine imports it, and nothing else is silenced."""

from __future__ import annotations

import subprocess
import sys

import pytest

BUILD_THE_ENGINE = """
import warnings
from guard.faces.dlib_engine import DlibEngine
DlibEngine()
warnings.warn("a warning of someone else's", UserWarning)
print("built")
"""


@pytest.mark.slow
def test_the_dlib_engine_starts_without_a_pkg_resources_warning() -> None:
    # A fresh interpreter (the module is imported once per process), every warning shown.
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", BUILD_THE_ENGINE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == "built", done.stderr
    assert "pkg_resources" not in done.stderr, done.stderr
    assert "a warning of someone else's" in done.stderr  # the filter is that one warning only
