"""What an adapter declares: which fields of one API family's requests and responses carry
images, masks, reference images, prompts, the operation, and URLs that are not images.

An adapter is data, not code: :mod:`guard.api.gateway.claims` walks every request body the
same way and asks the adapter only "what is this field?". A field no declaration names is
*unclaimed*: text in it is ignored, but an image in it (a file part, base64, a data URL) or a
URL refuses the request, because the upstream may read it in a way the guard did not check.

Field patterns
--------------
JSON fields are dotted paths from the body's root: ``prompt``, ``input.image``,
``images[].image_url``, ``input.messages[].content[].image``. ``[]`` is any element of an
array; ``*`` inside a key matches any characters (``input_image*`` matches ``input_image`` and
``input_image_2``); ``$`` is the body itself (a bare image body, or a top-level string).
Form fields (multipart parts and urlencoded pairs) are part names matched whole, with ``*``
as above (``image[]`` is a literal name there, as OpenAI's clients send it). A form name may
occur more than once only when its declaration says ``repeatable``; otherwise a second part
of the same name makes the request ambiguous (the guard and the upstream might read
different ones).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import cached_property


class Role(enum.Enum):
    """What a declared field carries."""

    INPUT = "input"  # an image the upstream edits
    MASK = "mask"  # a mask over an input (checked like any image: it may hold a face)
    REFERENCE = "reference"  # an image the upstream takes likeness or style from
    PROMPT = "prompt"  # text the prompt screen reads (several are joined)
    OPERATION = "operation"  # the operation name (bounded: see guard.api.gateway.bounds)
    LINK = "link"  # a URL that is not an image (webhooks, polling); anything else is refused
    OUTPUT = "output"  # (responses) an image the upstream made: scanned and stamped in place

    @property
    def carries_image(self) -> bool:
        return self in (Role.INPUT, Role.MASK, Role.REFERENCE, Role.OUTPUT)


ARRAY = "[]"
"""A pattern segment that matches any array index."""


@dataclass(frozen=True)
class Field:
    """One declared field: a pattern (see the module docstring) and what it carries."""

    pattern: str
    role: Role
    repeatable: bool = False  # form fields only: the name may occur more than once

    @cached_property
    def json_segments(self) -> tuple[str, ...]:
        """``input.messages[].content[].image`` → ``("input", "messages", "[]", "content",
        "[]", "image")``; ``$`` → ``()``."""
        if self.pattern == "$":
            return ()
        segments: list[str] = []
        for part in self.pattern.split("."):
            key, _, rest = part.partition("[")
            if key:
                segments.append(key)
            while rest:
                if not rest.startswith("]"):
                    raise ValueError(f"bad field pattern {self.pattern!r}")
                segments.append(ARRAY)
                rest = rest[1:].removeprefix("[")
        return tuple(segments)

    def matches_json(self, path: tuple[str | int, ...]) -> bool:
        segments = self.json_segments
        if len(segments) != len(path):
            return False
        for segment, step in zip(segments, path, strict=True):
            if segment == ARRAY:
                if not isinstance(step, int):
                    return False
            elif isinstance(step, int) or not _glob(segment).fullmatch(step):
                return False
        return True

    def matches_form(self, name: str) -> bool:
        return (self.pattern == "$" and name == "") or bool(_glob(self.pattern).fullmatch(name))


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(piece) for piece in pattern.split("*")), re.DOTALL)


@dataclass(frozen=True)
class Adapter:
    """One API family's declared request and response fields.

    ``json_fields`` apply to JSON bodies (also JSON nested in a string field or a form part),
    ``form_fields`` to multipart and urlencoded bodies, ``response_fields`` to JSON responses
    (``OUTPUT`` and ``LINK``; an image anywhere in a response is stamped, a URL in an
    ``OUTPUT`` field or in no declared field withholds the response). ``raw_body`` is the role
    of a bare image request body (``None``: this API never takes one, so one is refused).
    """

    name: str
    title: str
    json_fields: tuple[Field, ...] = ()
    form_fields: tuple[Field, ...] = ()
    response_fields: tuple[Field, ...] = ()
    raw_body: Role | None = None

    def json_role(self, path: tuple[str | int, ...]) -> Field | None:
        return next((f for f in self.json_fields if f.matches_json(path)), None)

    def form_role(self, name: str) -> Field | None:
        return next((f for f in self.form_fields if f.matches_form(name)), None)

    def response_role(self, path: tuple[str | int, ...]) -> Field | None:
        return next((f for f in self.response_fields if f.matches_json(path)), None)
