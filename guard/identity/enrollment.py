"""Enrollment screening: which faces may become a subject's templates.

A template stands for a consenting person from then on, so before one is stored the face must be
readable (large and clear enough for a reliable template), must not be a blocklisted public
figure unless an operator linked this very subject to that figure, must not already be another
subject of the same tenant (one person, one subject), and must be the same person as the
subject's faces on record and as the other faces enrolled with it (a grant, once the person
confirmed it, must not stretch to cover someone else's face). A face that another tenant
enrolled is allowed (a person may use two apps) and never mentioned: tenants are unlinkable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from guard.errors import EnrollmentRefused
from guard.faces import Face
from guard.faces.types import Embedding
from guard.identity.blocklist import Blocklist
from guard.identity.records import Subject

SameTenantMatches = Callable[[Subject, Sequence[Face]], list[list[tuple[str, float]]]]
"""For each face, ``(subject_id, similarity)`` of the subjects of ``subject``'s tenant (itself
included) most similar to it, best first."""


@dataclass(frozen=True)
class EnrollmentRules:
    blocklist_threshold: float
    registry_threshold: float
    same_person_threshold: float
    """How similar a face must be to the subject's own faces (the output scan's drift
    threshold: the guard's one rule for "still the same person")."""
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
        self._same_person(faces)
        for number, subjects in enumerate(same_tenant(subject, faces), start=1):
            others = [(s, similarity) for s, similarity in subjects if s != subject.id]
            if others and others[0][1] >= self.rules.registry_threshold:
                raise EnrollmentRefused(
                    f"face {number} is already enrolled as subject {others[0][0]} of tenant "
                    f"{subject.tenant}: one person is one subject (enroll more photos there)",
                    code="enrollment_matches_another_subject",
                )
            own = max((similarity for s, similarity in subjects if s == subject.id), default=0.0)
            if subject.template_count and own < self.rules.same_person_threshold:
                raise EnrollmentRefused(
                    f"face {number} is not the person already enrolled as subject {subject.id} "
                    f"(similarity {own:.3f}, at least {self.rules.same_person_threshold:.2f} "
                    "needed): a different person is a different subject",
                    code="enrollment_not_this_person",
                )

    def _same_person(self, faces: Sequence[Face]) -> None:
        """Faces enrolled together are one person (each as similar to the first as the rule
        asks)."""
        first = faces[0].embedding
        for number, face in enumerate(faces[1:], start=2):
            similarity = float(np.dot(first, face.embedding))
            if similarity < self.rules.same_person_threshold:
                raise EnrollmentRefused(
                    f"faces 1 and {number} are different people (similarity {similarity:.3f}): "
                    "enroll one person per subject",
                    code="enrollment_not_this_person",
                )

    def matching(self, embeddings: Sequence[Embedding], figure_id: str) -> list[bool]:
        """For each embedding, whether it is ``figure_id``'s face (at the blocklist threshold):
        what an unlinked subject must no longer hold."""
        threshold = self.rules.blocklist_threshold
        return [
            any(c.figure_id == figure_id and c.similarity >= threshold for c in candidates)
            for candidates in self._blocklist().match(embeddings)
        ]

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
