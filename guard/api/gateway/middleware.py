"""``GuardMiddleware``: plain ASGI middleware that puts the guard around a generation app.

    app = GuardMiddleware(generation_app, guard=Guard(), requester="acme/studio",
                          generator="acme-diffusion", generator_version="3.1",
                          paths={"/generate"})

For any request to one of ``paths`` it reads the body
by the path's adapter (:mod:`guard.api.gateway.routes`; ``GUARD_GATEWAY_ROUTES`` or the
built-in map of the known APIs, the guard's own shape elsewhere), checks every image in it
and answers a denial itself (403 problem) without calling the app; a body with an image the
adapter does not account for is refused (422). Allowed, it replays the body to the app and
makes its 2xx answer safe (:mod:`guard.api.gateway.responses`): a bare image or every image in
a JSON answer is scanned, watermarked and signed in place, with ``x-guard-*`` headers; an
answer it cannot make safe (an image it denies, an image URL, an unreadable body) is withheld
(502). An answer with no image passes. Non-2xx answers pass unchanged; other paths are
untouched. The image work holds a place in the middleware's admission
(:mod:`guard.api.admission`, sized from the guard's settings): past it, 503 ``busy`` with
``Retry-After``, and the app is not called.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Collection
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guard.api.gateway.body import single_headers
from guard.api.gateway.flow import GatewayFlow
from guard.api.gateway.routes import RouteMap, normalise_path
from guard.api.problems import guard_error_response
from guard.api.routes.common import denial
from guard.errors import GuardError, PayloadTooLarge
from guard.pipeline import Guard


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
        routes: RouteMap | None = None,
        default_operation: str = "generate",
        max_body_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.guard = guard
        self._requester = requester
        self.generator = generator
        self.generator_version = generator_version
        self.paths = frozenset(normalise_path(path) for path in paths)
        self.flow = GatewayFlow(
            guard,
            routes or RouteMap.from_settings(guard.settings),
            default_operation=default_operation,
        )
        self.max_body_bytes = max_body_bytes or guard.settings.api_max_body_bytes

    def requester_for(self, scope: Scope) -> str:
        return self._requester if isinstance(self._requester, str) else self._requester(scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _route_path(scope) not in self.paths:
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
        headers = single_headers(Headers(scope=scope).items())
        requester = self.requester_for(scope)
        checked = await run_in_threadpool(
            self.flow.check_request,
            method=scope["method"],
            path=_encoded_route_path(scope) + _query(scope),
            headers=headers,
            body=body,
            requester=requester,
        )
        if not checked.allowed:
            return denial(checked.decision)  # the platform itself: it sees its own registry
        status, response_headers, content = await self._call_app(scope, receive, body)
        outcome = await run_in_threadpool(
            self.flow.respond,
            checked,
            status=status,
            headers={k: v for k, v in response_headers.items()},
            body=content,
            generator=self.generator,
            generator_version=self.generator_version,
        )
        if not outcome.changed:
            return Response(content, status_code=status, headers=dict(response_headers))
        answer = Response(outcome.body, status_code=outcome.status)
        answer.raw_headers += [
            (name, value)
            for name, value in response_headers.raw
            if name.decode("latin-1").lower() not in outcome.remove_headers
            and name.decode("latin-1").lower() not in outcome.set_headers
        ]
        MutableHeaders(raw=answer.raw_headers).update(outcome.set_headers)
        return answer

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


def _route_path(scope: Scope) -> str:
    """The path the app's router matches: without the root path a server mounts it under
    (``uvicorn --root-path``), normalised as :func:`normalise_path` does."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return normalise_path(path, encoded=False)


def _encoded_route_path(scope: Scope) -> str:
    """:func:`_route_path` as sent (percent-encoded), for the flow's route map to decode once."""
    return urllib.parse.quote(_route_path(scope), safe="/:@!$&'()*+,;=-._~")


def _query(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    return f"?{query}" if query else ""
