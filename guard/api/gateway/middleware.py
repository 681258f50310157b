"""``GuardMiddleware``: plain ASGI middleware that puts the guard around a generation app.

    app = GuardMiddleware(generation_app, guard=Guard(), requester="acme/studio",
                          generator="acme-diffusion", generator_version="3.1",
                          paths={"/generate"})

For a ``POST`` to one of ``paths`` it reads the body (see
:mod:`guard.api.gateway.extract` for the shapes understood), checks it with
``Guard.check`` and answers a denial itself (403 problem) without calling the app. Allowed, it
replays the body to the app; a 2xx image response is scanned and stamped with ``Guard.stamp``
(the request's image becomes the parent ingredient) and sent on with ``x-guard-*`` headers.
A 2xx response that is not an image cannot be stamped, so it is withheld (502): an unmarked
output must not leave. Non-2xx responses pass through unchanged. Other paths are untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guard.api.gateway.extract import extract_request
from guard.api.problems import guard_error_response, problem
from guard.api.routes.common import denial
from guard.errors import GuardError, PayloadTooLarge
from guard.media import output_format_of_media_type
from guard.pipeline import Guard
from guard.requests import CheckRequest, StampRequest


class GuardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        guard: Guard,
        requester: str | Callable[[Scope], str],
        generator: str,
        generator_version: str = "unknown",
        paths: Collection[str] = ("/generate",),
        default_operation: str = "generate",
        max_body_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.guard = guard
        self._requester = requester
        self.generator = generator
        self.generator_version = generator_version
        self.paths = frozenset(paths)
        self.default_operation = default_operation
        self.max_body_bytes = max_body_bytes or guard.settings.api_max_body_bytes

    def requester_for(self, scope: Scope) -> str:
        return self._requester if isinstance(self._requester, str) else self._requester(scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        try:
            response = await self._guarded(scope, receive)
        except GuardError as exc:
            response = guard_error_response(exc)
        await response(scope, receive, send)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise PayloadTooLarge(f"the request body is over {self.max_body_bytes:,} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _guarded(self, scope: Scope, receive: Receive) -> Response:
        body = await self._read_body(receive)
        headers = Headers(scope=scope)
        asked = await extract_request(headers.get("content-type", ""), body)
        operation = headers.get("x-guard-operation") or asked.operation or self.default_operation
        requester = self.requester_for(scope)
        decision = await run_in_threadpool(
            self.guard.check,
            CheckRequest(
                requester=requester, operation=operation, image=asked.image, prompt=asked.prompt
            ),
        )
        if not decision.allowed:
            return denial(decision)  # the platform itself: it sees its own registry
        status, response_headers, content = await self._call_app(scope, receive, body)
        if not 200 <= status < 300:
            return Response(content, status_code=status, headers=dict(response_headers))
        media_type = response_headers.get("content-type", "").split(";")[0].strip().lower()
        if not media_type.startswith("image/"):
            return problem(
                502,
                "output_not_stampable",
                f"the generator answered {media_type or 'without a content type'}, not an "
                "image, so the output cannot be watermarked and signed; it is withheld",
            )
        result = await run_in_threadpool(
            self.guard.stamp,
            StampRequest(
                image=content,
                requester=requester,
                generator=self.generator,
                generator_version=self.generator_version,
                operation=operation,
                prompt=asked.prompt,
                source_image=asked.image,
                output_format=output_format_of_media_type(media_type),
            ),
        )
        if result.image is None or result.provenance is None:
            return denial(result.decision, input_decision_id=decision.decision_id)
        stamped = Response(result.image, status_code=status, media_type=result.provenance.mime_type)
        replaced = {b"content-length", b"content-type", b"etag", b"content-md5"}
        stamped.raw_headers += [
            (name, value) for name, value in response_headers.raw if name.lower() not in replaced
        ]
        guard_headers = stamped.headers
        guard_headers["x-guard-decision"] = result.decision.verdict.value
        guard_headers["x-guard-decision-id"] = result.decision.decision_id
        guard_headers["x-guard-input-decision-id"] = decision.decision_id
        guard_headers["x-guard-watermark-record"] = result.provenance.record_id
        guard_headers["x-guard-manifest-label"] = result.provenance.manifest_label
        return stamped

    async def _call_app(
        self, scope: Scope, receive: Receive, body: bytes
    ) -> tuple[int, Headers, bytes]:
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # the client's own disconnect, when it comes
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 500
        raw_headers: list[Any] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, raw_headers
            if message["type"] == "http.response.start":
                status = int(message["status"])
                raw_headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, replay, capture)
        return status, Headers(raw=raw_headers), b"".join(chunks)
