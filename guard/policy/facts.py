"""What a policy looks at: the facts of one request at one stage (no biometric data), and the
context a predicate is evaluated in (the request, and the face for ``each_face`` rules)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from guard.identity import FaceFacts, PromptSubject, tenant_of

Stage = Literal["input", "output"]


@dataclass(frozen=True)
class DriftFact:
    """How similar an allowed input face is to its best counterpart in the output."""

    input_face_index: int
    output_face_index: int | None
    similarity: float
    threshold: float


@dataclass(frozen=True)
class RequestFacts:
    """Everything a policy can look at for one request at one stage; no biometric data."""

    stage: Stage
    requester: str
    operation: str
    faces: tuple[FaceFacts, ...]
    prompt_figures: tuple[str, ...] = ()
    # Per named figure: how the prompt named it (rule, span, matched text), for the evidence.
    prompt_mentions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    prompt_subjects: tuple[PromptSubject, ...] = ()
    drift: tuple[DriftFact, ...] = ()
    # Output faces that are nobody from the input (output stage of an edit).
    appeared: tuple[int, ...] = ()
    # The NSFW classifier's score (None: screening switched off) and the classes it saw.
    nsfw_score: float | None = None
    nsfw_labels: tuple[str, ...] = ()
    # Conditions the input gate set (output stage): obligations carry through to the output.
    carried_conditions: tuple[str, ...] = ()
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def tenant(self) -> str:
        """The tenant part of the requester id (``tenant/app``)."""
        return tenant_of(self.requester)


@dataclass(frozen=True)
class Context:
    facts: RequestFacts
    face: FaceFacts | None = None

    @property
    def the_face(self) -> FaceFacts:
        # Rules are validated so that face predicates only appear in each_face rules.
        assert self.face is not None, "a face predicate outside an each_face rule"
        return self.face
