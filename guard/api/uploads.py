"""Upload safety, before anything is decided or written.

- :class:`BodySizeLimit` (plain ASGI): a declared ``Content-Length`` over the limit is refused
  with 413 before one byte is read; a streamed body is counted as it arrives and refused with
  413 the moment it passes the limit.
- :func:`image_bytes`: a multipart part must say it is an image (415 otherwise); what it says
  is checked again by decoding (415 for another format, 422 when it cannot be decoded).
"""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guard.api.problems import problem
from guard.errors import InvalidInput, UnsupportedMedia
from guard.media import ACCEPTED_MIME_TYPES


class _TooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException so that FastAPI's body parser re-raises it
    as it is (it turns other errors into 400) and the problem handler answers 413."""


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _refusal(self, size: str) -> JSONResponse:
        return problem(
            413,
            "payload_too_large",
            f"the request body is {size}; the limit is {self.max_bytes:,} bytes "
            "(GUARD_API_MAX_BODY_BYTES)",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refusal(f"{int(declared):,} bytes")(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge(
                        413,
                        f"the request body is larger than {self.max_bytes:,} bytes "
                        "(GUARD_API_MAX_BODY_BYTES)",
                    )
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await self._refusal("larger than allowed")(scope, receive, send)


async def image_bytes(upload: UploadFile, field: str) -> bytes:
    """The bytes of an image part, or a typed error naming the field."""
    media_type = (upload.content_type or "").split(";")[0].strip().lower()
    if media_type not in ACCEPTED_MIME_TYPES:
        raise UnsupportedMedia(
            f"the '{field}' part is {media_type or 'untyped'}; send one of "
            f"{', '.join(sorted(ACCEPTED_MIME_TYPES))}"
        )
    data = await upload.read()
    if not data:
        raise InvalidInput(f"the '{field}' part is empty")
    return data
