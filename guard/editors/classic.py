"""The classic CPU editor: background blur, relighting and colour grading with faces preserved.

Every operation works on the whole picture and then blends the original face regions back in
through a feathered elliptical mask, so identity is preserved by construction (and the output
scan verifies it). Background blur finds the person with GrabCut seeded from the faces.
Runs in well under a second at 1024² on one core (see docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from guard.editors.params import Choice, Number, ParamSpec, ParamValue, check_params, shown
from guard.errors import InvalidInput
from guard.faces import Face
from guard.media import RGBImage

FloatImage = NDArray[np.float32]
Params = Mapping[str, str | float | int | bool]

GRADES: dict[str, tuple[tuple[float, float, float], float, float]] = {
    # name: (per-channel RGB gains, saturation factor, contrast factor)
    "warm": ((1.08, 1.0, 0.88), 1.10, 1.05),
    "cool": ((0.90, 1.0, 1.10), 1.00, 1.05),
    "teal_orange": ((1.10, 0.98, 0.92), 1.20, 1.12),
    "vintage": ((1.06, 1.00, 0.85), 0.70, 0.90),
    "mono": ((1.0, 1.0, 1.0), 0.0, 1.10),
}
LIGHT_DIRECTIONS = ("left", "right", "top", "bottom")
GRABCUT_SIDE = 320


# Every parameter of every operation, what it takes and its default: checked before anything is
# decided (validate_params) and read from here when the edit runs.
SPECS: dict[str, dict[str, ParamSpec]] = {
    "background_blur": {"strength": Number(0.0, 0.1, low_open=True)},
    "relight": {
        "direction": Choice(LIGHT_DIRECTIONS),
        "intensity": Number(0.0, 1.0, low_open=True),
    },
    "color_grade": {"look": Choice(tuple(GRADES)), "amount": Number(0.0, 1.0, low_open=True)},
    "sketch": {"shade": Number(0.0, 0.1)},
}
DEFAULTS: dict[str, dict[str, ParamValue]] = {
    "background_blur": {"strength": 0.02},
    "relight": {"direction": "left", "intensity": 0.7},
    "color_grade": {"look": "teal_orange", "amount": 0.8},
    "sketch": {"shade": 0.03},
}


def face_mask(shape: tuple[int, int], faces: Sequence[Face], *, grow: float = 1.35) -> FloatImage:
    """1.0 over each face (an ellipse ``grow`` times the detector box), feathered to 0."""
    height, width = shape
    mask = np.zeros((height, width), dtype=np.float32)
    for face in faces:
        x0, y0, x1, y1 = face.bbox
        centre = (round((x0 + x1) / 2), round((y0 + y1) / 2 - 0.1 * (y1 - y0)))
        axes = (max(1, round((x1 - x0) * grow / 2)), max(1, round((y1 - y0) * grow * 1.2 / 2)))
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, thickness=-1)
    if faces:
        feather = max(3, int(0.15 * max(f.bbox[2] - f.bbox[0] for f in faces))) | 1
        mask = np.asarray(cv2.GaussianBlur(mask, (0, 0), feather / 2.0), dtype=np.float32)
        mask = np.clip(mask * 1.5, 0.0, 1.0)
    return mask


def _blend(original: RGBImage, edited: FloatImage, mask: FloatImage, keep: float) -> RGBImage:
    weight = (mask * keep)[:, :, None]
    out = edited * (1.0 - weight) + original.astype(np.float32) * weight
    blended: RGBImage = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return blended


def person_mask(rgb: RGBImage, faces: Sequence[Face]) -> FloatImage:
    """Soft foreground mask of the people, by GrabCut seeded with the faces, on a small copy."""
    height, width = rgb.shape[:2]
    scale = min(1.0, GRABCUT_SIDE / max(height, width))
    small = cv2.resize(
        rgb,
        (max(1, round(width * scale)), max(1, round(height * scale))),
        interpolation=cv2.INTER_AREA,
    )
    sh, sw = small.shape[:2]
    seeds = np.full((sh, sw), cv2.GC_BGD, dtype=np.uint8)
    if not faces:
        seeds[sh // 8 : sh - sh // 16, sw // 4 : sw - sw // 4] = cv2.GC_PR_FGD
    for face in faces:
        x0, y0, x1, y1 = (int(v * scale) for v in face.bbox)
        fw, fh = max(1, x1 - x0), max(1, y1 - y0)
        # Head and shoulders: probably foreground from above the head to the bottom edge.
        seeds[max(0, y0 - fh // 2) : sh, max(0, x0 - fw) : min(sw, x1 + fw)] = cv2.GC_PR_FGD
    for face in faces:
        x0, y0, x1, y1 = (int(v * scale) for v in face.bbox)
        seeds[y0:y1, x0:x1] = cv2.GC_FGD
    if (seeds == cv2.GC_BGD).all() or not ((seeds == cv2.GC_BGD).any()):
        seeds[0, :] = cv2.GC_BGD
        seeds[-1, :] = cv2.GC_BGD
    background = np.zeros((1, 65), np.float64)
    foreground = np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(small[:, :, ::-1])
    cv2.grabCut(bgr, seeds, (0, 0, 0, 0), background, foreground, 3, cv2.GC_INIT_WITH_MASK)
    small_mask = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)
    softened = cv2.GaussianBlur(small_mask, (0, 0), 2.0)
    full = cv2.resize(softened, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.asarray(full, dtype=np.float32)


class ClassicEditor:
    """OpenCV edits. All but ``sketch`` keep the faces as they are; ``sketch`` redraws the
    whole picture, faces included, as a non-photoreal illustration. Stateless and thread-safe."""

    name = "classic"
    version = "1.1.0"
    operations = frozenset({"background_blur", "relight", "color_grade", "sketch"})

    def validate_params(self, operation: str, params: Params, prompt: str = "") -> None:
        """Refuse an operation this editor lacks (400) or parameters it cannot run with (422
        ``invalid_params``: unknown, of the wrong type, not finite or out of range)."""
        self._read(operation, params)

    def describe(
        self, operation: str, params: Params, prompt: str
    ) -> dict[str, str | int | float | bool]:
        """Nothing beyond the editor's name, version and the parameters: it is deterministic.
        Checks them first (:meth:`validate_params`): ``Guard.edit`` calls this before deciding."""
        self.validate_params(operation, params, prompt)
        return {}

    def _read(self, operation: str, params: Params) -> dict[str, ParamValue]:
        """The operation's parameters, checked, over its defaults."""
        if operation not in SPECS:
            raise InvalidInput(
                f"the classic editor has no operation {shown(operation)}; "
                f"choose one of {sorted(self.operations)}"
            )
        return {**DEFAULTS[operation], **check_params(operation, params, SPECS[operation])}

    def edit(
        self,
        rgb: RGBImage,
        faces: Sequence[Face],
        operation: str,
        params: Params,
        *,
        prompt: str = "",
        progress: Callable[[int, int], None] | None = None,
    ) -> RGBImage:
        """One operation on ``rgb`` (the prompt is not used: each operation is fixed)."""
        edited = self._edit(rgb, faces, operation, params)
        if progress is not None:
            progress(1, 1)
        return edited

    def _edit(
        self, rgb: RGBImage, faces: Sequence[Face], operation: str, params: Params
    ) -> RGBImage:
        self._read(operation, params)  # refuses an unknown operation before running any
        if operation == "background_blur":
            return self.background_blur(rgb, faces, params)
        if operation == "relight":
            return self.relight(rgb, faces, params)
        if operation == "color_grade":
            return self.color_grade(rgb, faces, params)
        return self.sketch(rgb, params)

    def background_blur(self, rgb: RGBImage, faces: Sequence[Face], params: Params) -> RGBImage:
        """Blur everything but the people. ``strength`` is the blur radius as a fraction of
        the image's longer side (default 0.02)."""
        strength = float(self._read("background_blur", params)["strength"])
        sigma = max(1.0, strength * max(rgb.shape[:2]))
        blurred = cv2.GaussianBlur(rgb, (0, 0), sigma).astype(np.float32)
        keep = np.maximum(person_mask(rgb, faces), face_mask(rgb.shape[:2], faces))
        return _blend(rgb, blurred, keep, 1.0)

    def relight(self, rgb: RGBImage, faces: Sequence[Face], params: Params) -> RGBImage:
        """A soft directional light: ``direction`` left|right|top|bottom, ``intensity`` 0..1."""
        values = self._read("relight", params)
        direction, intensity = str(values["direction"]), float(values["intensity"])
        height, width = rgb.shape[:2]
        ramp = np.linspace(1.0, -1.0, width if direction in ("left", "right") else height)
        if direction in ("right", "bottom"):
            ramp = ramp[::-1]
        gain = 1.0 + 0.45 * intensity * ramp.astype(np.float32)
        gain_map = np.broadcast_to(
            gain[None, :] if direction in ("left", "right") else gain[:, None], (height, width)
        )
        lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
        lab[:, :, 0] = np.clip(lab[:, :, 0] * gain_map, 0, 255)
        # A warm tint on the lit side, as real key light has.
        lab[:, :, 2] = np.clip(lab[:, :, 2] + 6.0 * intensity * (gain_map - 1.0) / 0.45, 0, 255)
        relit = cv2.cvtColor(lab.astype(np.uint8), cv2.COLOR_LAB2RGB).astype(np.float32)
        return _blend(rgb, relit, face_mask(rgb.shape[:2], faces), 0.6)

    def color_grade(self, rgb: RGBImage, faces: Sequence[Face], params: Params) -> RGBImage:
        """A named look (``look``: warm|cool|teal_orange|vintage|mono) at ``amount`` 0..1."""
        values = self._read("color_grade", params)
        look, amount = str(values["look"]), float(values["amount"])
        gains, saturation, contrast = GRADES[look]
        image = rgb.astype(np.float32)
        graded = image * np.array(gains, dtype=np.float32)
        luma = graded @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        graded = luma[:, :, None] + (graded - luma[:, :, None]) * saturation
        graded = (graded - 128.0) * contrast + 128.0
        graded = image + (graded - image) * amount
        return _blend(rgb, np.clip(graded, 0, 255), face_mask(rgb.shape[:2], faces), 0.6)

    def sketch(self, rgb: RGBImage, params: Params) -> RGBImage:
        """A pencil drawing of the picture (``shade`` 0..0.1: grey shading, default 0.03).
        Nothing photographic is left, faces included: policies use it where a person may be
        shown only as an illustration."""
        shade = float(self._read("sketch", params)["shade"])
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        grey, _ = cv2.pencilSketch(bgr, sigma_s=60, sigma_r=0.07, shade_factor=shade)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
