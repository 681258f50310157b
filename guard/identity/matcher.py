"""Face -> identity: which enrolled subject and which public figure each face is, if any.

A face can match both (a public figure who enrolled); the policy decides what that means.

Subjects are looked up in the requester's tenant only: a face that only another tenant enrolled
is, to this requester, a face nobody enrolled (same facts, so the same decision, message and
audit entry), and the lookup does the same work either way (:meth:`ConsentRegistry.match`
searches only the tenant's templates). Tenants are unlinkable.
Thresholds are cosine similarities per engine and per list (``GUARD_DLIB_REGISTRY_THRESHOLD``,
``GUARD_DLIB_BLOCKLIST_THRESHOLD``, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from guard.errors import Unavailable
from guard.faces import BBox, Face, FaceEngine
from guard.identity.blocklist import Blocklist
from guard.identity.records import ConsentGrant
from guard.identity.registry import ConsentRegistry
from guard.identity.tenancy import tenant_of


class MatchKind(StrEnum):
    CONSENTED_SUBJECT = "consented_subject"
    PUBLIC_FIGURE = "public_figure"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Match:
    """The best identity for one face above the threshold (``identity_id`` is a subject or
    figure id; an ``unknown`` match has none)."""

    face_index: int
    kind: MatchKind
    identity_id: str | None
    similarity: float
    threshold: float


@dataclass(frozen=True)
class FaceFacts:
    """Everything the policy needs to know about one face; no biometric data."""

    face_index: int
    bbox: BBox
    subject: Match | None
    figure: Match | None
    grants: tuple[ConsentGrant, ...]  # the matched subject's grants to this requester
    linked_figure_id: str | None  # the blocklist entry the matched subject is, if any
    # A public figure the face came close to without matching (within the near-miss margin
    # under the threshold): a signal for usage monitoring, never a reason to deny.
    near_miss_figure_id: str | None = None
    # False for a face another detector saw that the identity engine could not read (covered,
    # turned away): no identity can be checked, so it is an unknown face.
    readable: bool = True

    @property
    def kind(self) -> MatchKind:
        if self.figure is not None:
            return MatchKind.PUBLIC_FIGURE
        if self.subject is not None:
            return MatchKind.CONSENTED_SUBJECT
        return MatchKind.UNKNOWN


@dataclass(frozen=True)
class PromptSubject:
    """An enrolled subject of the requester's tenant named in the prompt, with the subject's
    grants to this requester and how the prompt named them (``mention``: screening rule, span,
    matched text)."""

    subject_id: str
    grants: tuple[ConsentGrant, ...]
    mention: Mapping[str, str]


class Matcher:
    """Looks faces up in the registry and the blocklist with the engine's threshold."""

    def __init__(
        self,
        registry: ConsentRegistry,
        blocklist: Blocklist,
        *,
        engine: FaceEngine,
        registry_threshold: float,
        blocklist_threshold: float,
        near_miss_margin: float = 0.0,
    ) -> None:
        if blocklist.engine_name != engine.name or blocklist.dimension != engine.dimension:
            raise Unavailable(
                f"the blocklist holds {blocklist.engine_name} embeddings but the face engine is "
                f"{engine.name}; rebuild it with `guard blocklist build`"
            )
        self._registry = registry
        self._blocklist = blocklist
        self.registry_threshold = registry_threshold
        self.blocklist_threshold = blocklist_threshold
        self.near_miss_margin = near_miss_margin

    def facts_for(self, faces: Sequence[Face], *, requester: str) -> list[FaceFacts]:
        """The facts of each face for ``requester``: subjects of its own tenant only."""
        embeddings = [face.embedding for face in faces]
        subject_hits = self._registry.match(embeddings, tenant=tenant_of(requester))
        figure_hits = self._blocklist.match(embeddings)
        facts = []
        for index, face in enumerate(faces):
            subject = _best(
                index,
                MatchKind.CONSENTED_SUBJECT,
                [(c.subject_id, c.similarity) for c in subject_hits[index]],
                self.registry_threshold,
            )
            figure_candidates = [(c.figure_id, c.similarity) for c in figure_hits[index]]
            figure = _best(
                index, MatchKind.PUBLIC_FIGURE, figure_candidates, self.blocklist_threshold
            )
            grants: tuple[ConsentGrant, ...] = ()
            linked = None
            if subject is not None and subject.identity_id is not None:
                grants = tuple(
                    self._registry.list_grants(subject_id=subject.identity_id, grantee=requester)
                )
                linked = self._registry.get_subject(subject.identity_id).public_figure_id
            facts.append(
                FaceFacts(
                    face_index=index,
                    bbox=face.bbox,
                    subject=subject,
                    figure=figure,
                    grants=grants,
                    linked_figure_id=linked,
                    near_miss_figure_id=_near_miss(
                        figure_candidates, self.blocklist_threshold, self.near_miss_margin
                    ),
                )
            )
        return facts

    def prompt_subjects(
        self, named: Iterable[tuple[str, Mapping[str, str]]], *, requester: str
    ) -> tuple[PromptSubject, ...]:
        """The subjects a prompt names (``(subject_id, mention)``), with their grants to
        ``requester``."""
        return tuple(
            PromptSubject(
                subject_id,
                tuple(self._registry.list_grants(subject_id=subject_id, grantee=requester)),
                mention,
            )
            for subject_id, mention in named
        )


def _best(
    index: int, kind: MatchKind, candidates: Sequence[tuple[str, float]], threshold: float
) -> Match | None:
    """The top candidate if it clears the threshold (candidates come best first)."""
    if not candidates or candidates[0][1] < threshold:
        return None
    identity_id, similarity = candidates[0]
    return Match(index, kind, identity_id, round(similarity, 4), threshold)


def _near_miss(
    candidates: Sequence[tuple[str, float]], threshold: float, margin: float
) -> str | None:
    """The top candidate if it falls short of the threshold by less than ``margin``."""
    if not candidates or margin <= 0.0:
        return None
    identity_id, similarity = candidates[0]
    return identity_id if threshold - margin <= similarity < threshold else None
