"""NSFW screening of inputs and outputs with NudeNet's bundled ONNX detector (offline), and the
faces that detector sees.

The score of an image is the highest confidence of a *sexual* exposure class (exposed genitalia,
female breast, buttocks or anus); covered body parts, bellies, feet, armpits and faces do not
count. The detector also finds faces (``FACE_FEMALE``, ``FACE_MALE``), covered or turned away
ones included, which the identity engine misses. They are reported as ``faces``: the identity
engine looks harder where they are (turned views of just those places), and a face nobody can
identify is an unknown face, not "no face" (:mod:`guard.safety.unreadable`, where a weak one
counts only if a second detector confirms it: on its own it also fires on cats and blurs).
The policy decides what a score means (the default denies sexual content showing any real
person's face, ``nsfw_real_person``).

NudeNet (``nudenet``, with its ``320n.onnx`` weights) is licensed **AGPL-3.0**: a deployment that
offers the guard over a network must meet that licence or bring another classifier through the
:class:`NsfwClassifier` protocol (``Guard(nsfw=...)``). ``GUARD_NSFW_CLASSIFIER=none`` switches
screening off explicitly; a configured classifier that cannot load fails closed (``unavailable``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from guard.devices import DeviceSetting, onnx_providers
from guard.errors import Unavailable
from guard.faces import BBox
from guard.media import RGBImage, downscaled

SEXUAL_CLASSES = frozenset(
    {
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED",
    }
)


FACE_CLASSES = frozenset({"FACE_FEMALE", "FACE_MALE"})
# NudeNet's face confidences here: real faces 0.38–0.75 (t1.jpg, covered faces 0.26–0.67), no
# face found at all on 18 photos without people (docs/benchmarks.md, red-team section). Between
# this and corroborate.STRONG_FACE_SCORE a detection needs a second opinion (issue 17).
FACE_MIN_SCORE = 0.25


@dataclass(frozen=True)
class SeenFace:
    """A face the NSFW detector saw, identifiable or not, and its confidence."""

    box: BBox
    score: float


@dataclass(frozen=True)
class NsfwScore:
    score: float
    """Highest confidence of a sexual exposure class in the image, 0 when there is none."""
    labels: tuple[str, ...] = ()
    classifier: str = ""
    faces: tuple[SeenFace, ...] = ()
    """Every face the detector saw (x0, y0, x1, y1 and confidence), weak ones included."""


class NsfwClassifier(Protocol):
    name: str

    def score(self, rgb: RGBImage) -> NsfwScore: ...


MODEL_SIDE = 320
"""NudeNet's input size: no working copy is made smaller than this."""


class NudeNetClassifier:
    """NudeNet 3.4's detector (320 px input) on the device ``guard.devices`` picks."""

    name = "nudenet-3.4.2-320n"

    def __init__(self, device: DeviceSetting = "auto", *, max_side: int = 1280) -> None:
        self.max_side = max_side
        try:
            import onnxruntime
            from nudenet import NudeDetector
            from nudenet import nudenet as module
        except ImportError as exc:
            raise Unavailable(
                "the NSFW classifier (nudenet) is not installed: install the project's "
                "`nsfw` extra, or set GUARD_NSFW_CLASSIFIER=none to screen without it"
            ) from exc
        from pathlib import Path

        self._detector = NudeDetector()
        model = Path(module.__file__).with_name("320n.onnx")
        # NudeNet opens its session on the default provider; use the device setting instead.
        self._detector.onnx_session = onnxruntime.InferenceSession(
            str(model), providers=onnx_providers(device)
        )

    def score(self, rgb: RGBImage) -> NsfwScore:
        # The model sees 320 px; NudeNet pads and copies what it is given several times over
        # (+325 MB for a 36 MP image), so a large image is first brought to the working size
        # (GUARD_DETECT_MAX_SIDE) and the boxes scaled back to the full image.
        small, scale = downscaled(rgb, max(self.max_side, MODEL_SIDE))
        # NudeNet's own path reads files with OpenCV, i.e. BGR: feed it the same.
        bgr = np.ascontiguousarray(small[..., ::-1])
        detections = self._detector.detect(bgr)
        for detection in detections:
            detection["box"] = [round(v / scale) for v in detection["box"]]
        sexual = [d for d in detections if d["class"] in SEXUAL_CLASSES]
        top = max((float(d["score"]) for d in sexual), default=0.0)
        labels = tuple(sorted({str(d["class"]) for d in sexual}))
        faces = tuple(
            SeenFace(_box(d["box"], rgb.shape[:2]), round(float(d["score"]), 4))
            for d in detections
            if d["class"] in FACE_CLASSES
        )
        return NsfwScore(round(top, 4), labels, self.name, faces)


def _box(xywh: list[int], shape: tuple[int, ...]) -> BBox:
    x, y, w, h = (int(v) for v in xywh)
    height, width = shape[:2]
    return (max(0, x), max(0, y), min(width, x + w), min(height, y + h))
