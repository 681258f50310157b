"""Enrollment screening: which faces may become a subject's templates.

A template stands for a consenting person from then on, so before one is stored the face must be
readable (large and clear enough for a reliable template), must not be a blocklisted public
figure unless an operator linked this very subject to that figure, and must not already be
another subject of the same tenant (one person, one subject). A face that another tenant
enrolled is allowed (a person may use two apps) and never mentioned: tenants are unlinkable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from guard.errors import EnrollmentRefused
from guard.faces import Face
from guard.identity.blocklist import Blocklist
from guard.identity.records import Subject

SameTenantMatches = Callable[[Subject, Sequence[Face]], list[list[tuple[str, float]]]]
"""For each face, ``(subject_id, similarity)`` of the other subjects of ``subject``'s tenant
most similar to it, best first."""


@dataclass(frozen=True)
class EnrollmentRules:
    blocklist_threshold: float
    registry_threshold: float
    min_face_pixels: int
    min_detection_score: float


class EnrollmentScreen:
    """Raises :class:`EnrollmentRefused` for the first face that may not be enrolled.

    ``blocklist`` is read on every enrollment (a missing or corrupt blocklist raises
    :class:`~guard.errors.Unavailable`: nothing is enrolled unscreened)."""

    def __init__(self, rules: EnrollmentRules, blocklist: Callable[[], Blocklist]) -> None:
        self.rules = rules
        self._blocklist = blocklist

    def check(
        self, subject: Subject, faces: Sequence[Face], same_tenant: SameTenantMatches
    ) -> None:
        for number, face in enumerate(faces, start=1):
            self._readable(face, number)
        figures = self._blocklist().match([face.embedding for face in faces])
        for number, candidates in enumerate(figures, start=1):
            if not candidates or candidates[0].similarity < self.rules.blocklist_threshold:
                continue
            figure_id = candidates[0].figure_id
            if figure_id != subject.public_figure_id:
                raise EnrollmentRefused(
                    f"face {number} matches the blocklisted public figure {figure_id!r}; only "
                    "an operator can link a subject to a public figure (with evidence), and "
                    "only then can that figure's face be enrolled for it",
                    code="enrollment_matches_public_figure",
                )
        for number, subjects in enumerate(same_tenant(subject, faces), start=1):
            if subjects and subjects[0][1] >= self.rules.registry_threshold:
                raise EnrollmentRefused(
                    f"face {number} is already enrolled as subject {subjects[0][0]} of tenant "
                    f"{subject.tenant}: one person is one subject (enroll more photos there)",
                    code="enrollment_matches_another_subject",
                )

    def _readable(self, face: Face, number: int) -> None:
        x0, y0, x1, y1 = face.bbox
        side = min(x1 - x0, y1 - y0)
        rules = self.rules
        if side < rules.min_face_pixels:
            raise EnrollmentRefused(
                f"face {number} is {x1 - x0}x{y1 - y0} pixels; an enrollment photo needs the "
                f"face at least {rules.min_face_pixels} pixels across "
                "(GUARD_ENROLL_MIN_FACE_PIXELS): use a closer or larger photo",
                code="enrollment_face_unreliable",
            )
        if face.score < rules.min_detection_score:
            raise EnrollmentRefused(
                f"face {number} is too faint or blurred for a reliable template (detection "
                f"score {face.score:.2f}, at least {rules.min_detection_score:.2f} needed): use "
                "a sharp, well-lit, frontal photo",
                code="enrollment_face_unreliable",
            )
