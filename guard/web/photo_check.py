"""Is the person on the consent page the person the request is for?

The photo (uploaded, or a camera frame sent as the same upload) must show exactly one face,
large and clear enough to read. For a subject with templates on record, the face must match
them at the registry threshold (the same rule the gate uses to say "this is them"); a subject
with none yet is enrolled from it, through the registry's enrollment screening (public figures,
another subject of the tenant, unreadable faces). The photo itself is never stored: only the
template, encrypted, as every enrollment does. Messages name no ids, scores or other people,
and a face registered under another subject reads like any photo that could not be confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass

from guard.errors import EnrollmentRefused, Forbidden, UnprocessableInput
from guard.faces import Face
from guard.pipeline import Guard

_REFUSED = {
    "enrollment_matches_public_figure": (
        "This face cannot be registered through this page. If you are a public figure, "
        "contact the organisation that sent you the link."
    ),
    # Not "already registered": that would tell whoever holds a new person's link whether a
    # face is on record with the organisation. The same words as a photo that does not match.
    "enrollment_matches_another_subject": (
        "We could not confirm this photo, so nothing was agreed. Try a clearer photo of "
        "yourself; if the request was not meant for you, decline it."
    ),
    "enrollment_not_this_person": "This photo does not show the person this request is for.",
}
UNREADABLE = (
    "The face in this photo is too small, faint or blurred to check. Use a sharp, well-lit "
    "photo that shows your face from the front, close up."
)
MISMATCH = (
    "This photo does not match the person this request is for, so nothing was agreed. "
    "Try a clearer photo of yourself; if the request was not meant for you, decline it."
)


class PhotoMismatch(Forbidden):
    code = "photo_mismatch"


@dataclass(frozen=True)
class PhotoChecked:
    enrolled: bool
    """True when the subject had no templates and this photo enrolled one."""
    template_ids: tuple[int, ...] = ()
    """The templates this photo enrolled: the caller removes them if the answer then fails
    (:meth:`~guard.identity.registry.ConsentRegistry.unenroll`), so a request that ends
    declined or unanswered keeps no face."""


def _one_readable_face(guard: Guard, faces: list[Face]) -> Face:
    if not faces:
        raise UnprocessableInput(
            "We could not find a face in this photo. Use a photo that shows your face clearly."
        )
    if len(faces) > 1:
        raise UnprocessableInput(
            f"This photo shows {len(faces)} faces. Use a photo that shows only you."
        )
    face = faces[0]
    settings, engine = guard.settings, guard.face_engine.name
    x0, y0, x1, y1 = face.bbox
    if min(
        x1 - x0, y1 - y0
    ) < settings.enroll_min_face_pixels or face.score < settings.enroll_min_detection_score(engine):
        raise UnprocessableInput(UNREADABLE)
    return face


def check_photo(guard: Guard, subject_id: str, tenant: str, data: bytes) -> PhotoChecked:
    """Raise a typed error (with a message for the person) unless the photo is the subject."""
    face = _one_readable_face(guard, guard.faces_in(data))
    registry = guard.registry
    if registry.get_subject(subject_id).template_count == 0:
        try:
            ids = registry.enroll(subject_id, [face])
        except EnrollmentRefused as exc:
            message = _REFUSED.get(exc.code, UNREADABLE)
            raise EnrollmentRefused(message, code=exc.code) from None
        return PhotoChecked(enrolled=True, template_ids=tuple(ids))
    threshold = guard.settings.registry_threshold(guard.face_engine.name)
    candidates = registry.match([face.embedding], tenant=tenant)[0]
    if not any(c.subject_id == subject_id and c.similarity >= threshold for c in candidates):
        raise PhotoMismatch(MISMATCH)
    return PhotoChecked(enrolled=False)
