"""Walk a whole request body and account for every image in it, by the route's adapter.

Every JSON string, form field and file part is read by its content
(:func:`guard.api.gateway.sniff.read_string`). An image in a field the adapter declares as an
input, mask or reference image is collected for checking; an image anywhere else refuses the
request (``unrecognised_image_field``), and so does a URL, unless the field is declared a
non-image link (``unverifiable_image_reference``). Prompts and the operation come from their
declared fields. Nothing is skipped because of where it is or how it is labelled.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from guard.api.gateway.adapters import Adapter, Field, Role
from guard.api.gateway.body import Body, FormPart, utf8
from guard.api.gateway.sniff import looks_like_image, read_string
from guard.errors import UnprocessableInput

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class FoundImage:
    """An image the request carries: where (for messages), its role, its bytes."""

    where: str
    role: Role
    data: bytes


@dataclass(frozen=True)
class Claimed:
    """What a request asks for, as its adapter reads it."""

    images: tuple[FoundImage, ...]
    prompt: str
    operation: str | None


def claim_request(adapter: Adapter, body: Body, *, max_images: int) -> Claimed:
    """Every image of ``body`` accounted for, or :class:`UnprocessableInput`."""
    walk = _Walk(adapter, max_images)
    if body.kind == "json":
        walk.json(body.document, ())
    elif body.kind == "form":
        walk.form(body.parts)
    elif body.kind == "image":
        walk.raw_image(body.raw)
    elif body.kind == "text":
        raw = Field("$", adapter.raw_body) if adapter.raw_body else None
        walk.string(utf8(body.raw, "the body"), (), raw, "the request body")
    return Claimed(tuple(walk.images), "\n".join(walk.prompts), walk.operation)


class _Walk:
    def __init__(self, adapter: Adapter, max_images: int) -> None:
        self.adapter = adapter
        self.max_images = max_images
        self.images: list[FoundImage] = []
        self.prompts: list[str] = []
        self.operation: str | None = None

    def json(self, value: object, path: Path) -> None:
        """Walk a JSON value (JSON nested in a string continues its field's path: its insides
        are unclaimed unless a pattern names them)."""
        if isinstance(value, dict):
            for key, item in value.items():
                _text_ok(key, "a JSON key")
                self.json(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.json(item, (*path, index))
        elif isinstance(value, str):
            self.string(value, path, self.adapter.json_role(path), _json_where(path))

    def form(self, parts: tuple[FormPart, ...]) -> None:
        counts = Counter(part.name for part in parts)
        for part in parts:
            declared = self.adapter.form_role(part.name)
            where = f"the form field {part.name[:64]!r}"
            if counts[part.name] > 1 and not (declared and declared.repeatable):
                raise UnprocessableInput(
                    f"{where} occurs {counts[part.name]} times and this API takes it once; "
                    "the guard and the upstream could read different ones, so the request is "
                    "ambiguous",
                    code="ambiguous_request",
                )
            if part.is_file or looks_like_image(part.value):
                self.image(part.value, declared, where)
                continue
            try:
                text = part.value.decode("utf-8")
            except UnicodeDecodeError:
                # Binary that is no image the guard knows: an upstream may still read it.
                self.image(part.value, declared, where)
                continue
            self.string(text, (part.name,), declared, where)

    def raw_image(self, data: bytes) -> None:
        role = self.adapter.raw_body
        self.image(data, Field("$", role) if role else None, "the request body")

    def string(self, value: str, path: Path, declared: Field | None, where: str) -> None:
        _text_ok(value, where)
        role = declared.role if declared else None
        if role is Role.PROMPT:
            self.prompts.append(value)
        elif role is Role.OPERATION:
            self.operation = value
        if not value.strip():
            return
        read = read_string(value)
        if read.kind == "image":
            self.image(read.image, declared, where)
        elif read.kind == "url":
            if role is not Role.LINK and role not in (Role.PROMPT, Role.OPERATION):
                raise _unverifiable(where)
        elif read.kind == "json":
            self.json(read.nested, path)
        elif role is not None and role.carries_image:
            # An id or a name in an image field: it refers to an image the guard cannot see.
            raise _unverifiable(where)

    def image(self, data: bytes, declared: Field | None, where: str) -> None:
        if declared is None or not declared.role.carries_image:
            raise UnprocessableInput(
                f"{where} carries an image, and the {self.adapter.title} adapter declares no "
                "image there; the guard refuses what it cannot check (declare the field in "
                "the adapter, or route this path to the adapter of its API)",
                code="unrecognised_image_field",
            )
        if len(self.images) >= self.max_images:
            raise UnprocessableInput(
                f"the request carries more than {self.max_images} images "
                "(GUARD_GATEWAY_MAX_IMAGES)",
                code="too_many_images",
            )
        self.images.append(FoundImage(where, declared.role, data))


def _text_ok(value: str, where: str) -> None:
    """Lone surrogates (``"\\ud800"`` in JSON) are no text: refused, never carried on."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UnprocessableInput(
            f"{where[:80]} holds a lone surrogate, which is not text", code="invalid_text"
        ) from None


def _unverifiable(where: str) -> UnprocessableInput:
    return UnprocessableInput(
        f"{where} refers to an image by URL or id; the guard cannot check what it does not "
        "have, so send the image itself (base64, a data URL or a file part)",
        code="unverifiable_image_reference",
    )


def _json_where(path: Path) -> str:
    if not path:
        return "the JSON body"
    text = "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path)
    return f"the JSON field {text.lstrip('.')[:120]!r}"
