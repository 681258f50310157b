"""Walk a whole request and account for every image in it, by the route's adapter.

Every JSON key and string, form field, file part, query parameter and header value is read by
its content (:func:`guard.api.gateway.strings.read_string`). An image in a field the adapter
declares as an input, mask or reference image is collected for checking; an image anywhere
else refuses the request (``unrecognised_image_field``), and so does a URL, unless the field
is declared a non-image link (``unverifiable_image_reference``). An image with bytes after
its own end refuses too (``ambiguous_request``: a lenient reader may find more there). Prompts
and the operation come from their declared fields. Nothing is skipped because of where it is
or how it is labelled; a body that reads more than one way is accounted for in every reading.
"""

from __future__ import annotations

import urllib.parse
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from guard.api.gateway.adapters import Adapter, Field, Role
from guard.api.gateway.body import Body, utf8
from guard.api.gateway.multipart import MAX_FORM_PARTS, FormPart, ambiguous
from guard.api.gateway.sniff import looks_like_image, trailing_bytes
from guard.api.gateway.strings import MAX_DEPTH, byte_array, read_string
from guard.errors import UnprocessableInput

Path = tuple[str | int, ...]

# Headers whose values are the HTTP exchange's own business, never an image or a field.
_TRANSPORT_HEADERS = frozenset(
    {"content-type", "content-length", "content-encoding", "transfer-encoding", "host"}
)


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


def claim_request(
    adapter: Adapter,
    readings: Sequence[Body],
    *,
    max_images: int,
    query: str = "",
    headers: Mapping[str, str] | None = None,
) -> Claimed:
    """Every image of every reading of the body, of the query string and of the headers
    accounted for, or :class:`UnprocessableInput`."""
    walk = _Walk(adapter, max_images)
    for body in readings:
        walk.body(body)
    if query:
        walk.query(query)
    for name, value in (headers or {}).items():
        if name not in _TRANSPORT_HEADERS and read_string(value).kind == "image":
            raise walk.unrecognised(f"the {name[:64]!r} header")
    operations = set(walk.operations)
    if len(operations) > 1:
        raise ambiguous("the body names more than one operation")
    return Claimed(
        tuple(walk.images.values()),
        "\n".join(dict.fromkeys(walk.prompts)),
        operations.pop() if operations else None,
    )


class _Walk:
    def __init__(self, adapter: Adapter, max_images: int) -> None:
        self.adapter = adapter
        self.max_images = max_images
        self.images: dict[bytes, FoundImage] = {}
        self.prompts: list[str] = []
        self.operations: list[str] = []
        self.found = 0  # images met in the current reading (the cap counts repeats)

    def body(self, body: Body) -> None:
        self.found = 0
        if body.kind == "json":
            self.json(body.document, ())
        elif body.kind == "form":
            self.form(body.parts, self.adapter.form_role)
        elif body.kind in ("image", "text"):
            raw = Field("$", self.adapter.raw_body) if self.adapter.raw_body else None
            if body.kind == "image":
                self.image(body.raw, raw, "the request body")
            else:
                self.string(utf8(body.raw, "the body"), (), raw, "the request body")

    def query(self, query: str) -> None:
        """Query parameters: no adapter declares one, so an image or a URL there refuses."""
        pairs = urllib.parse.parse_qsl(
            query, keep_blank_values=True, errors="replace", max_num_fields=MAX_FORM_PARTS
        )
        parts = tuple(FormPart(f"?{name}", value.encode()) for name, value in pairs)
        self.form(parts, lambda _name: None, repeats_ok=True)

    def json(self, value: object, path: Path) -> None:
        """Walk a JSON value (JSON nested in a string continues its field's path: its insides
        are unclaimed unless a pattern names them)."""
        if len(path) > MAX_DEPTH:
            raise UnprocessableInput(
                f"the JSON body nests deeper than {MAX_DEPTH}", code="invalid_json"
            )
        declared = self.adapter.json_role(path)
        if declared and declared.role.carries_image and not isinstance(value, str | None):
            raise UnprocessableInput(
                f"{_json_where(path)} is where an image goes, and it holds a JSON "
                f"{type(value).__name__} instead of base64 or a data URL; some readers take "
                "an array of bytes there, so the guard refuses what it cannot read as an image",
                code="unrecognised_image_field",
            )
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"a key of {_json_where(path)}"
                _text_ok(key, where)
                if read_string(key).kind == "image":
                    raise self.unrecognised(where)
                self.json(item, (*path, key))
        elif isinstance(value, list):
            data = byte_array(value)
            if data is not None:
                self.image(data, None, f"the byte array at {_json_where(path)}")
            for index, item in enumerate(value):
                self.json(item, (*path, index))
        elif isinstance(value, str):
            self.string(value, path, declared, _json_where(path))

    def form(
        self,
        parts: tuple[FormPart, ...],
        declare: Callable[[str], Field | None],
        *,
        repeats_ok: bool = False,
    ) -> None:
        counts = Counter(part.name for part in parts)
        for part in parts:
            declared = declare(part.name)
            where = f"the form field {part.name[:64]!r}"
            repeatable = repeats_ok or (declared is not None and declared.repeatable)
            if counts[part.name] > 1 and not repeatable:
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

    def string(self, value: str, path: Path, declared: Field | None, where: str) -> None:
        _text_ok(value, where)
        role = declared.role if declared else None
        if role is Role.PROMPT:
            self.prompts.append(value)
        elif role is Role.OPERATION:
            self.operations.append(value)
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

    def unrecognised(self, where: str) -> UnprocessableInput:
        return UnprocessableInput(
            f"{where} carries an image, and the {self.adapter.title} adapter declares no "
            "image there; the guard refuses what it cannot check (declare the field in the "
            "adapter, or route this path to the adapter of its API)",
            code="unrecognised_image_field",
        )

    def image(self, data: bytes, declared: Field | None, where: str) -> None:
        if declared is None or not declared.role.carries_image:
            raise self.unrecognised(where)
        if trailing_bytes(data):
            raise ambiguous(
                f"the image in {where} has {trailing_bytes(data):,} bytes after its end, "
                "where a lenient reader may find more"
            )
        self.found += 1
        if self.found > self.max_images:
            raise UnprocessableInput(
                f"the request carries more than {self.max_images} images "
                "(GUARD_GATEWAY_MAX_IMAGES)",
                code="too_many_images",
            )
        # The same image twice (repeated, or in two readings of one body) is checked once.
        self.images.setdefault(data, FoundImage(where, declared.role, data))


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
