"""A request body as the gateway reads it: by what it is, not by what its content type says.

A JSON body labelled ``text/plain`` or form-urlencoded is read as JSON, a bare image labelled
``application/octet-stream`` as an image; a compressed body is decompressed (under the body
cap) before anything else. What cannot be read at all (undeclared binary, an encoding the
guard does not know, a broken multipart body) is refused, because an upstream might read it.

JSON is parsed strictly: duplicate keys anywhere are ambiguous (a reader that keeps the first
and one that keeps the last see different requests), ``NaN``/``Infinity`` are not JSON, and
strings with lone surrogates or bodies that are not UTF-8 are refused (422 ``invalid_text``).
"""

from __future__ import annotations

import json
import re
import urllib.parse
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from guard.api.gateway.multipart import MAX_FORM_PARTS, FormPart, ambiguous, read_multipart
from guard.api.gateway.sniff import as_text, looks_like_image
from guard.api.gateway.strings import MAX_DEPTH
from guard.errors import InvalidInput, PayloadTooLarge, UnprocessableInput, UnsupportedMedia

BodyKind = Literal["empty", "json", "form", "image", "text"]


@dataclass(frozen=True)
class Body:
    """A parsed request body: ``document`` for JSON, ``parts`` for forms, ``raw`` for a bare
    image or text."""

    kind: BodyKind
    document: object = None
    parts: tuple[FormPart, ...] = ()
    raw: bytes = b""


_FORM_LIKE = re.compile(rb"[\w.\-\[\]%+*~]+=[^&\s]*(&[\w.\-\[\]%+*~]+=[^&\s]*)*\s*")


_SINGLE_HEADERS = frozenset(
    {"content-type", "content-encoding", "content-length", "transfer-encoding", "x-guard-operation"}
)


def single_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Request headers by lower-case name; a header that says how to read the body, given
    twice, is ambiguous (the guard and the upstream could each take a different one)."""
    headers: dict[str, str] = {}
    for raw_name, value in pairs:
        name = raw_name.lower()
        if name in headers and name in _SINGLE_HEADERS:
            raise ambiguous(f"the request has the {name} header twice")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def parse_body(headers: Mapping[str, str], body: bytes, *, max_bytes: int) -> tuple[Body, ...]:
    """Every way an upstream could read ``body`` (decompressed under ``max_bytes``; headers
    lower-case). A declared form, multipart or JSON body is read as declared; a body that
    also reads another way (a JSON-looking form, an image labelled as a form) is read that
    way too, and the images of every reading are accounted for. Undeclared bodies are read
    by what they are."""
    content_type = headers.get("content-type", "")
    body = decompressed(headers.get("content-encoding", ""), body, max_bytes=max_bytes)
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not body.strip():
        return (Body("empty"),)
    if media_type == "multipart/form-data":
        return (Body("form", parts=read_multipart(content_type, body, max_bytes=max_bytes)),)
    if media_type == "application/json" or media_type.endswith("+json"):
        return (Body("json", document=parse_json(body)),)
    if media_type == "application/x-www-form-urlencoded":
        form = Body("form", parts=_urlencoded(body))
        if body.lstrip()[:1] in (b"{", b"[", b'"'):
            return (form, *_json_reading(body))
        return (form,)
    if looks_like_image(body):
        return (Body("image", raw=body),)
    if body.lstrip()[:1] in (b"{", b"[", b'"') and (readings := _json_reading(body)):
        return readings
    if _FORM_LIKE.fullmatch(body):
        return (Body("form", parts=_urlencoded(body)),)
    if as_text(body) is None:
        raise UnsupportedMedia(
            f"the gateway cannot read a body of type {media_type or 'unlabelled'} that is "
            "neither an image, JSON, a form nor UTF-8 text; an upstream might, so it is refused"
        )
    return (Body("text", raw=body),)


def _json_reading(body: bytes) -> tuple[Body, ...]:
    """The JSON reading of a body that may or may not be JSON (none if it is not)."""
    try:
        return (Body("json", document=parse_json(body)),)
    except UnprocessableInput:
        raise  # JSON, but refused (duplicate keys, lone surrogates, too deep)
    except InvalidInput:
        return ()


def parse_json(data: bytes) -> object:
    """Strict JSON: UTF-8 (a BOM is tolerated), no duplicate keys, no ``NaN``, nesting the
    parser can hold."""
    text = utf8(data.removeprefix(b"\xef\xbb\xbf"), "the JSON body")
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        if _depth(document) > MAX_DEPTH:
            raise RecursionError
        return document
    except RecursionError:
        raise UnprocessableInput(
            "the JSON body is nested too deeply", code="invalid_json"
        ) from None
    except ValueError as exc:
        if isinstance(exc, _Refused):
            raise exc.error from None
        raise InvalidInput(f"the JSON body cannot be parsed: {exc}") from None


def _depth(document: object) -> int:
    """How deep a parsed JSON document nests (iteratively: it may be deep)."""
    deepest, stack = 0, [(document, 0)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return deepest


def utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnprocessableInput(
            f"{what} is not valid UTF-8 (byte {exc.start})", code="invalid_text"
        ) from None


class _Refused(ValueError):
    """Carries a GuardError out of json.loads' hooks."""

    def __init__(self, error: InvalidInput) -> None:
        super().__init__(error.message)
        self.error = error


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    document: dict[str, object] = {}
    for key, value in pairs:
        if key in document:
            raise _Refused(
                UnprocessableInput(
                    f"the JSON body has the key {key[:64]!r} twice in one object; readers "
                    "disagree on which one counts, so the request is ambiguous",
                    code="ambiguous_request",
                )
            )
        document[key] = value
    return document


def _no_constant(name: str) -> object:
    raise _Refused(InvalidInput(f"the JSON body contains {name}, which is not JSON"))


def decompressed(encoding: str, body: bytes, *, max_bytes: int) -> bytes:
    """``body`` with its ``Content-Encoding`` undone, under ``max_bytes``."""
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    for coding in reversed(codings):  # the last one applied comes off first
        if coding == "identity":
            continue
        if coding not in ("gzip", "x-gzip", "deflate"):
            raise UnsupportedMedia(
                f"the body is compressed with {coding!r}; the gateway reads gzip and deflate"
            )
        body = _inflate(coding, body, max_bytes=max_bytes)
    return body


def _inflate(coding: str, data: bytes, *, max_bytes: int) -> bytes:
    """Every member of a gzip stream (readers upstream — Node's gunzip, Go's gzip.Reader,
    Python's gzip — read them all, so the guard does too); trailing bytes after a deflate
    stream are refused."""
    wbits = 47 if coding != "deflate" else 15  # 47: gzip or zlib header, auto-detected
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(data, max_bytes + 1 - len(out))
        except zlib.error as exc:
            raise InvalidInput(f"the {coding} body cannot be decompressed: {exc}") from None
        if len(out) > max_bytes or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"the decompressed body is over {max_bytes:,} bytes")
        if not inflater.eof:
            raise InvalidInput(f"the {coding} body ends before its stream does")
        data = inflater.unused_data
        if data and coding == "deflate":
            raise ambiguous("bytes follow the deflate stream")
    return bytes(out)


def _urlencoded(body: bytes) -> tuple[FormPart, ...]:
    text = utf8(body, "the form body").strip()
    try:
        pairs = urllib.parse.parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FORM_PARTS,
        )
    except UnicodeDecodeError:
        raise UnprocessableInput(
            "a form field is not valid UTF-8 once percent-decoded", code="invalid_text"
        ) from None
    except ValueError as exc:
        raise UnprocessableInput(str(exc), code="too_many_parts") from None
    return tuple(FormPart(name, value.encode("utf-8")) for name, value in pairs)
