"""Multipart form data, read strictly: every part with its headers, and anything two
readers could split differently refused as ambiguous.

python-multipart (what Starlette runs) does the parsing; on top of it the gateway refuses
what other readers (Werkzeug, busboy, Go's mime/multipart) resolve differently: a part with no
or two ``Content-Disposition`` headers, ``name*=``/``filename*=`` parameters, a
``Content-Transfer-Encoding``, a boundary given twice in the content type, the boundary after
a bare line break inside a part, and content in the preamble or the epilogue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from guard.errors import InvalidInput, UnprocessableInput, UnsupportedMedia

if TYPE_CHECKING:  # defined for type checkers only
    from python_multipart.multipart import MultipartCallbacks

MAX_FORM_PARTS = 1000


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


def read_multipart(content_type: str, body: bytes, *, max_bytes: int) -> tuple[FormPart, ...]:
    try:
        _, options = parse_options_header(content_type)
    except UnicodeError:
        raise InvalidInput("the multipart content type is not latin-1 text") from None
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidInput("the multipart body's content type names no boundary")
    if len(re.findall(r";\s*boundary\s*=", content_type, re.I)) > 1:
        raise ambiguous("the content type names its boundary twice")
    _check_outside_parts(body, boundary)
    reader = _PartReader(boundary)
    try:
        parser = MultipartParser(boundary, reader.callbacks(), max_size=max_bytes)
        parser.write(body)
        parser.finalize()
    except (FormParserError, ValueError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"the multipart body cannot be parsed: {exc}") from None
    if not reader.finished:
        raise InvalidInput("the multipart body ends before its closing boundary")
    return tuple(reader.parts)


def _check_outside_parts(body: bytes, boundary: bytes) -> None:
    """Nothing but whitespace before the first delimiter or after the closing one: readers
    disagree on what a preamble or an epilogue holds."""
    delimiter = b"--" + boundary
    first = body.find(delimiter)
    closing = body.rfind(delimiter + b"--")
    if first < 0 or closing < 0:
        raise InvalidInput("the multipart body lacks its first or closing boundary")
    if body[:first].strip() or body[closing + len(delimiter) + 2 :].strip():
        raise ambiguous("the multipart body has content before its first or after its last part")


def ambiguous(message: str) -> UnprocessableInput:
    return UnprocessableInput(
        f"{message}; readers disagree on such a request", code="ambiguous_request"
    )


class _PartReader:
    """Collects parts with their headers from python-multipart's callbacks."""

    def __init__(self, boundary: bytes) -> None:
        self.bare_delimiter = re.compile(rb"(?:\r(?!\n)|(?<!\r)\n)--" + re.escape(boundary))
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
            raise ambiguous("a multipart part has no or several Content-Disposition headers")
        if encodings and encodings[0].strip().lower() not in (b"binary", b"8bit", b"7bit"):
            raise UnsupportedMedia("a multipart part uses a Content-Transfer-Encoding")
        disposition = dispositions[0].decode("latin-1")
        if re.search(r";\s*(name|filename)\*", disposition, re.I):
            # RFC 7578 forbids name*= and filename*=; readers that honour them and readers
            # that ignore them name the part differently.
            raise ambiguous("a multipart part names itself with an extended parameter (name*=)")
        _, options = parse_options_header(disposition)
        name = options.get(b"name")
        filename = options.get(b"filename")
        value = b"".join(self._data)
        if self.bare_delimiter.search(value):
            # Werkzeug also ends a part at a delimiter after a bare LF or CR: it would see a
            # part here that python-multipart (and the guard) read as this part's content.
            raise ambiguous("a multipart part holds its boundary after a bare line break")
        self.parts.append(
            FormPart(
                name=_header_text(name) if name is not None else "",
                value=value,
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
