"""Boxes in an image's pixels, and when two of them are the same face.

One home for the rule, because two stages apply it: the face engine (is a second detector's
face one it has already read?) and the unreadable-face screen (which faces did the identity
engine not read?).
"""

from __future__ import annotations

from collections.abc import Sequence

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _centre(box: Sequence[float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _inside(point: tuple[float, float], box: Sequence[float], grow: float) -> bool:
    cx, cy = _centre(box)
    half_w, half_h = (box[2] - box[0]) * grow / 2, (box[3] - box[1]) * grow / 2
    return abs(point[0] - cx) <= half_w and abs(point[1] - cy) <= half_h


def same_face(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether boxes from two different detectors hold the same face: either centre lies in
    the other box grown by half (detectors frame a face differently: NudeNet takes in hair and
    chin, dlib the inner face, so IoU alone would split one face in two)."""
    return _inside(_centre(a), b, 1.5) or _inside(_centre(b), a, 1.5)
