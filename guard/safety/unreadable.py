"""Faces that are there but cannot be identified: covered (a hand, a mask, a band over the
eyes) or turned away, so the identity engine finds no face at all. The red-team evaluation
found that such a photo of a blocklisted figure passed the gate as "no face"; a second
detector (NudeNet's face classes, already run for NSFW screening) sees most of them. Each one
the identity engine did not read becomes an unknown face: nobody's consent can be checked for
it, so the default policy denies it (fail closed). A weak detection counts only where dlib's CNN
detector confirms it (:mod:`guard.safety.corroborate`), and that costly check runs only for the
faces left unread, never for one the identity engine read."""

from __future__ import annotations

from collections.abc import Sequence

from guard.faces import BBox, Face, same_face
from guard.identity import FaceFacts
from guard.media import RGBImage
from guard.safety.corroborate import FaceCorroborator
from guard.safety.nsfw import FACE_MIN_SCORE, SeenFace


def unread_faces(seen: Sequence[SeenFace], read: Sequence[Face]) -> tuple[SeenFace, ...]:
    """The faces in ``seen`` (at ``FACE_MIN_SCORE`` or more) that are none of the faces the
    identity engine ``read``."""
    return tuple(
        face
        for face in seen
        if face.score >= FACE_MIN_SCORE and not any(same_face(face.box, r.bbox) for r in read)
    )


class UnreadableFaces:
    """The boxes of faces seen but not read that count as faces (weak ones corroborated)."""

    def __init__(self) -> None:
        self._corroborator = FaceCorroborator()

    def boxes(
        self, rgb: RGBImage, seen: Sequence[SeenFace], read: Sequence[Face]
    ) -> tuple[BBox, ...]:
        missed = unread_faces(seen, read)
        return self._corroborator.keep(rgb, [(face.box, face.score) for face in missed])


def with_unreadable(
    facts: Sequence[FaceFacts], unreadable: Sequence[BBox]
) -> tuple[FaceFacts, ...]:
    """The identified faces' facts, then one unknown, unreadable face for each box."""
    extra = [
        FaceFacts(len(facts) + offset, box, None, None, (), None, readable=False)
        for offset, box in enumerate(unreadable)
    ]
    return (*facts, *extra)
