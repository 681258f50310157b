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
from typing import TYPE_CHECKING, Literal

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from guard.api.gateway.sniff import as_text, looks_like_image
from guard.errors import InvalidInput, PayloadTooLarge, UnprocessableInput, UnsupportedMedia

if TYPE_CHECKING:  # defined for type checkers only
    from python_multipart.multipart import MultipartCallbacks


@dataclass(frozen=True)
class FormPart:
    """One multipart part or urlencoded pair. ``filename`` is set for file parts."""

    name: str
    value: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def is_file(self) -> bool:
        return self.filename is not None


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
MAX_FORM_PARTS = 1000


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
            raise _ambiguous(f"the request has the {name} header twice")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def parse_body(headers: Mapping[str, str], body: bytes, *, max_bytes: int) -> Body:
    """Read ``body`` under ``max_bytes`` (decompressed). ``headers`` are lower-case."""
    content_type = headers.get("content-type", "")
    body = decompressed(headers.get("content-encoding", ""), body, max_bytes=max_bytes)
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not body.strip():
        return Body("empty")
    if media_type == "multipart/form-data":
        return Body("form", parts=_multipart(content_type, body, max_bytes=max_bytes))
    if looks_like_image(body):
        return Body("image", raw=body)
    declared_json = media_type == "application/json" or media_type.endswith("+json")
    if declared_json or body.lstrip()[:1] in (b"{", b"[", b'"'):
        try:
            return Body("json", document=parse_json(body))
        except InvalidInput:
            if declared_json:
                raise
    if media_type == "application/x-www-form-urlencoded" or _FORM_LIKE.fullmatch(body):
        return Body("form", parts=_urlencoded(body))
    if as_text(body) is None:
        raise UnsupportedMedia(
            f"the gateway cannot read a body of type {media_type or 'unlabelled'} that is "
            "neither an image, JSON, a form nor UTF-8 text; an upstream might, so it is refused"
        )
    return Body("text", raw=body)


def parse_json(data: bytes) -> object:
    """Strict JSON: UTF-8 (a BOM is tolerated), no duplicate keys, no ``NaN``, nesting the
    parser can hold."""
    text = utf8(data.removeprefix(b"\xef\xbb\xbf"), "the JSON body")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except RecursionError:
        raise UnprocessableInput(
            "the JSON body is nested too deeply", code="invalid_json"
        ) from None
    except ValueError as exc:
        if isinstance(exc, _Refused):
            raise exc.error from None
        raise InvalidInput(f"the JSON body cannot be parsed: {exc}") from None


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
        wbits = 47 if coding != "deflate" else 15  # 47: gzip or zlib header, auto-detected
        inflater = zlib.decompressobj(wbits)
        try:
            body = inflater.decompress(body, max_bytes + 1)
        except zlib.error as exc:
            raise InvalidInput(f"the {coding} body cannot be decompressed: {exc}") from None
        if len(body) > max_bytes or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"the decompressed body is over {max_bytes:,} bytes")
    return body


def _multipart(content_type: str, body: bytes, *, max_bytes: int) -> tuple[FormPart, ...]:
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidInput("the multipart body's content type names no boundary")
    reader = _PartReader()
    parser = MultipartParser(boundary, reader.callbacks(), max_size=max_bytes)
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidInput(f"the multipart body cannot be parsed: {exc}") from None
    if not reader.finished:
        raise InvalidInput("the multipart body ends before its closing boundary")
    return tuple(reader.parts)


class _PartReader:
    """Collects parts with their headers from python-multipart's callbacks."""

    def __init__(self) -> None:
        self.parts: list[FormPart] = []
        self.finished = False
        self._headers: list[tuple[bytes, bytes]] = []
        self._field = b""
        self._value = b""
        self._data: list[bytes] = []

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_part_data": self._part_data,
            "on_part_end": self._end,
            "on_end": self._finish,
        }

    def _begin(self) -> None:
        self._headers, self._data = [], []
        if len(self.parts) >= MAX_FORM_PARTS:
            raise UnprocessableInput(
                f"the multipart body has over {MAX_FORM_PARTS} parts", code="too_many_parts"
            )

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers.append((self._field.strip().lower(), self._value.strip()))
        self._field = self._value = b""

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._data.append(data[start:end])

    def _end(self) -> None:
        dispositions = [v for k, v in self._headers if k == b"content-disposition"]
        types = [v for k, v in self._headers if k == b"content-type"]
        encodings = [v for k, v in self._headers if k == b"content-transfer-encoding"]
        if len(dispositions) != 1 or len(types) > 1:
            raise _ambiguous("a multipart part has no or several Content-Disposition headers")
        if encodings and encodings[0].strip().lower() not in (b"binary", b"8bit", b"7bit"):
            raise UnsupportedMedia("a multipart part uses a Content-Transfer-Encoding")
        disposition = dispositions[0].decode("latin-1")
        if re.search(r";\s*(name|filename)\*", disposition, re.I):
            # RFC 7578 forbids name*= and filename*=; readers that honour them and readers
            # that ignore them name the part differently.
            raise _ambiguous("a multipart part names itself with an extended parameter (name*=)")
        _, options = parse_options_header(disposition)
        name = options.get(b"name")
        filename = options.get(b"filename")
        self.parts.append(
            FormPart(
                name=_header_text(name) if name is not None else "",
                value=b"".join(self._data),
                filename=_header_text(filename) if filename is not None else None,
                content_type=types[0].decode("latin-1") if types else None,
            )
        )

    def _finish(self) -> None:
        self.finished = True


def _header_text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


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


def _ambiguous(message: str) -> UnprocessableInput:
    return UnprocessableInput(
        f"{message}; readers disagree on such a request", code="ambiguous_request"
    )
