"""What the guard is asked and what it answers: the requests of its three flows, the result of
an edit or a stamp, and what decision sinks and stage observers are told.

Build them with keywords; they are frozen.

    >>> CheckRequest(requester="acme/app", operation="relight", prompt="warmer light")
    CheckRequest(requester='acme/app', operation='relight', image=None, prompt='warmer light')
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from guard.errors import UnprocessableInput
from guard.media import OutputFormat

if TYPE_CHECKING:
    from guard.audit import Receipt
    from guard.policy import Decision
    from guard.provenance import StampedImage

ParamValue = str | float | int | bool

EditPhase = Literal["input_gate", "edit", "output_scan", "stamp"]
"""What ``Guard.edit`` is doing, in this order. A request the input gate denies never reaches
``edit``; an output the scan denies never reaches ``stamp``."""
PhaseCallback = Callable[[EditPhase], None]


OPERATION_NAME = re.compile(r"[a-z0-9_.\-]{1,64}")
"""What an operation name may be: it is audited, matched by policies and shown to people."""


def check_request_text(*, requester: str, operation: str, prompt: str) -> None:
    """Refuse (422) an operation name outside :data:`OPERATION_NAME` and text that is not
    text (lone surrogates cannot be encoded, audited or signed)."""
    if not OPERATION_NAME.fullmatch(operation):
        raise UnprocessableInput(
            f"the operation {operation[:80]!r}{'…' if len(operation) > 80 else ''} is not an "
            "operation name: 1 to 64 characters of a-z, 0-9, '_', '.' and '-'",
            code="invalid_operation",
        )
    for what, text in (("requester", requester), ("prompt", prompt)):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise UnprocessableInput(
                f"the {what} holds a lone surrogate, which is not text", code="invalid_text"
            ) from None


@dataclass(frozen=True, kw_only=True)
class CheckRequest:
    """A pre-generation question: may ``requester`` do ``operation`` to this image/prompt?"""

    requester: str
    operation: str
    image: bytes | None = None
    prompt: str = ""


@dataclass(frozen=True, kw_only=True)
class EditRequest:
    """An edit for the guard to gate, run and scan."""

    image: bytes
    operation: str
    requester: str
    prompt: str = ""
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    output_format: OutputFormat = "png"


@dataclass(frozen=True, kw_only=True)
class StampRequest:
    """An image another generator made, to be scanned and, if allowed, watermarked and signed.

    ``source_image`` is the input the generator started from, if any: it becomes the manifest's
    parent ingredient. ``output_format`` defaults to the image's own (PNG for non-web formats).
    """

    image: bytes
    requester: str
    generator: str
    generator_version: str = "unknown"
    operation: str = "generate"
    prompt: str = ""
    source_image: bytes | None = None
    output_format: OutputFormat | None = None


@dataclass(frozen=True, kw_only=True)
class Result:
    """What ``Guard.edit`` and ``Guard.stamp`` return. ``decision`` is the final word: the output
    scan's when there was an output, else the input gate's. ``image`` (watermarked, with a signed
    C2PA manifest) and ``provenance`` are set only when it is allowed."""

    decision: Decision
    input_decision: Decision
    output_decision: Decision | None
    image: bytes | None
    input_sha256: str
    output_sha256: str | None
    editor: str
    provenance: StampedImage | None = None
    receipts: tuple[Receipt, ...] = ()
    """Audit receipts, in order: input decision, output decision, release (those that exist)."""
    editor_record: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    """What reproduces the edit (model and weights hashes, seed, steps, guidance, prompt hash),
    as the editor describes it; also in the C2PA manifest."""


@dataclass(frozen=True, kw_only=True)
class DecisionEvent:
    """What a sink is told about each decision (no pixels, no embeddings)."""

    decision: Decision
    requester: str
    operation: str
    input_sha256: str | None
    output_sha256: str | None = None
    watermark_record_id: str | None = None
    manifest_label: str | None = None
    receipt: Receipt | None = None


class DecisionSink(Protocol):
    """Told every decision after it is audited and before the caller sees it (the HTTP
    service's metrics plug in here)."""

    def record(self, event: DecisionEvent) -> None: ...


class StageObserver(Protocol):
    """Told how long each stage took (``faces``, ``match``, ``nsfw``, ``edit``,
    ``output_scan``, ``stamp``, ``audit``): the HTTP service's latency metrics plug in here."""

    def observe_stage(self, stage: str, seconds: float) -> None: ...
