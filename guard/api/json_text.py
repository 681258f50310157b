"""JSON request bodies must be text: :class:`JsonTextCheck` (plain ASGI) refuses, before any
route reads them, a JSON body that is not UTF-8 and one whose strings hold a lone surrogate
(``"\\ud800"``), with 422 ``invalid_text``.

Why here and not in each model: ``json.loads`` (FastAPI's body parser) turns ``"\\ud800"`` into
a Python string that cannot be encoded, and pydantic passes such a string through a plain
``str`` field; it then fails wherever it is written (the database, the audit log's canonical
JSON, a C2PA manifest) as a 500, possibly after something was decided. One check in front of
every route leaves no field to forget. Bodies the routes parse with pydantic's own JSON reader
(a check's JSON body, the ``params`` parts) are refused by it already; multipart text parts are
decoded by Starlette, which reads bytes that are not UTF-8 as Latin-1 (text, never a surrogate).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guard.api.problems import problem

# A \\u escape of a surrogate (D800-DFFF). Without one a decoded JSON document holds none: a
# strictly decoded UTF-8 body cannot carry surrogates as raw characters.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", maxsplit=1)[0].strip().lower()
    main, _, sub = media_type.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def _strings(document: object) -> Iterable[str]:
    """Every string in a parsed JSON document, keys included."""
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            for key, value in item.items():
                yield key
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def lone_surrogate_in(text: str) -> bool:
    """Whether JSON ``text`` parses to strings (or keys) holding a lone surrogate; False for
    text that is not JSON (its reader refuses it for that)."""
    if not _SURROGATE_ESCAPE.search(text):
        return False
    try:
        document = json.loads(text)
    except ValueError:
        return False  # not JSON at all: the route refuses it as it always has
    for string in _strings(document):
        try:
            string.encode("utf-8")
        except UnicodeEncodeError:
            return True
    return False


def refusal(body: bytes, content_type: str | None) -> str | None:
    """Why ``body`` is refused, or None. A body typed as JSON must be UTF-8 (RFC 8259); an
    untyped one (FastAPI parses it as JSON too) is read in the encoding JSON detection finds."""
    if content_type is not None and not _is_json(content_type):
        return None
    if content_type is not None:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"the JSON body is not valid UTF-8 (byte {exc.start})"
    else:
        try:
            text = body.decode(json.detect_encoding(body))
        except UnicodeDecodeError:
            return None  # not text: no route reads it as JSON
    if lone_surrogate_in(text):
        return "a string in the JSON body holds a lone surrogate, which is not text"
    return None


class JsonTextCheck:
    """Reads a JSON (or untyped) request body whole, refuses it (422 ``invalid_text``) when
    :func:`refusal` says so, and otherwise hands it on unchanged. Sits inside the body size
    limit, so what it buffers is bounded by ``GUARD_API_MAX_BODY_BYTES``.

    Paths under ``skip`` are left alone: the gateway reads the bodies of other APIs itself
    (content encodings, charsets, each adapter's fields) and refuses the same with the same
    code. So is a body with a content encoding: no route here reads one as JSON."""

    def __init__(self, app: ASGIApp, skip: tuple[str, ...] = ()) -> None:
        self.app = app
        self.skip = skip

    def _checks(self, scope: Scope) -> tuple[bool, str | None]:
        """Whether to read this request's body, and its content type."""
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(self.skip):
            return False, None
        headers = dict(scope.get("headers", ()))
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        raw_type = headers.get(b"content-type")
        content_type = raw_type.decode("latin-1") if raw_type is not None else None
        typed_otherwise = content_type is not None and not _is_json(content_type)
        return encoding == b"identity" and not typed_otherwise, content_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wanted, content_type = self._checks(scope)
        if not wanted:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nothing to check
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        reason = refusal(body, content_type) if body else None
        if reason is not None:
            await problem(422, "invalid_text", reason)(scope, receive, send)
            return
        replayed: Message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay([replayed], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that gives ``messages`` first, then what the client sends next (a
    disconnect)."""
    pending = list(messages)

    async def replaying() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replaying
