"""Faces that are there but cannot be identified: covered (a hand, a mask, a band over the
eyes) or turned away, so the identity engine finds no face at all. The red-team evaluation
found that such a photo of a blocklisted figure passed the gate as "no face"; a second
detector (NudeNet's face classes, already run for NSFW screening) sees most of them. Each one
the identity engine did not read becomes an unknown face: nobody's consent can be checked for
it, so the default policy denies it (fail closed)."""

from __future__ import annotations

from collections.abc import Sequence

from guard.faces import BBox, Face
from guard.identity import FaceFacts
from guard.safety.nsfw import NsfwScore


def _centre(box: BBox) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _inside(point: tuple[float, float], box: BBox, grow: float = 1.0) -> bool:
    cx, cy = _centre(box)
    half_w, half_h = (box[2] - box[0]) * grow / 2, (box[3] - box[1]) * grow / 2
    return abs(point[0] - cx) <= half_w and abs(point[1] - cy) <= half_h


def unreadable_faces(seen: Sequence[BBox], read: Sequence[Face]) -> tuple[BBox, ...]:
    """The boxes in ``seen`` that are none of the faces the identity engine ``read`` (neither
    centre lies in the other's box, grown by half)."""
    return tuple(
        box
        for box in seen
        if not any(
            _inside(_centre(box), face.bbox, 1.5) or _inside(_centre(face.bbox), box, 1.5)
            for face in read
        )
    )


def with_unreadable(
    facts: Sequence[FaceFacts], faces: Sequence[Face], nsfw: NsfwScore | None
) -> tuple[FaceFacts, ...]:
    """The identified faces' facts, then one unknown, unreadable face for each face the NSFW
    detector saw that the identity engine did not read (covered or turned away)."""
    seen = nsfw.face_boxes if nsfw else ()
    extra = [
        FaceFacts(len(facts) + offset, box, None, None, (), None, readable=False)
        for offset, box in enumerate(unreadable_faces(seen, faces))
    ]
    return (*facts, *extra)
