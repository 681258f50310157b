"""What every page of the person's site carries: security headers, CSRF tokens, cookies.

- **Headers**: a Content-Security-Policy that allows scripts, styles and images from this origin
  only (no inline script, no third-party host), no framing, no referrer (the links hold
  tokens), no caching (the pages show a person's consents).
- **CSRF**: a random value in an HttpOnly ``SameSite=Strict`` cookie, and in every form the
  HMAC of that value under the deployment's key (a signed double-submit token): a form posted
  without it, or from a page that did not get it from us, is refused with a 403 page.
- **Cookies** are HttpOnly, ``SameSite=Strict``, ``Path=/``, and ``Secure`` unless the page
  was asked for over plain HTTP by a loopback name (``localhost``, ``127.0.0.1``, ``[::1]``: a
  development server). Whether the browser's request was HTTPS is not needed to decide it: a
  proxy that terminates TLS and is not in GUARD_TRUSTED_PROXIES looks like plain HTTP, and
  the cookie must still never travel unencrypted.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guard.errors import Forbidden
from guard.secrets import KeyedHasher

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}
CSRF_COOKIE = "lg_csrf"
CSRF_FIELD = "csrf"
ME_COOKIE = "lg_me"


class CsrfRefused(Forbidden):
    code = "csrf_refused"


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def secure_cookies(request: Request) -> bool:
    """Whether this request's cookies are ``Secure``: always, except on plain HTTP to a
    loopback name (a development server; not every browser keeps Secure cookies there)."""
    host = (request.url.hostname or "").strip("[]").lower()
    return request.url.scheme == "https" or host not in _LOOPBACK


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name, value, httponly=True, samesite="strict", secure=secure_cookies(request), path="/"
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, httponly=True, samesite="strict", secure=secure_cookies(request), path="/"
    )


def _refused() -> CsrfRefused:
    return CsrfRefused(
        "This form could not be accepted: it was not sent from this page, or it is out of "
        "date. Go back, reload the page and try again."
    )


class Csrf:
    """The signed double-submit token of one request (see the module docstring)."""

    def __init__(self, request: Request, hasher: KeyedHasher) -> None:
        self._request = request
        self._hasher = hasher
        current = request.cookies.get(CSRF_COOKIE, "")
        self._fresh = len(current) < 32
        self._value = secrets.token_urlsafe(32) if self._fresh else current

    @property
    def form_token(self) -> str:
        return self._hasher.ref("web-csrf", self._value)

    def attach(self, response: Response) -> None:
        """Give the browser the cookie the form tokens are made from (when it had none)."""
        if self._fresh:
            set_cookie(self._request, response, CSRF_COOKIE, self._value)

    def require_cookie(self) -> None:
        """Refuse a form from a browser without the CSRF cookie (before reading its body)."""
        if self._fresh:
            raise _refused()

    def verify(self, presented: str | None) -> None:
        refused = _refused()
        if self._fresh or not presented:
            raise refused
        if not hmac.compare_digest(presented, self.form_token):
            raise refused


WEB_PATHS = ("/console", "/me", "/consent/", "/confirm/")
"""The paths of the web pages: every answer under them carries :data:`PAGE_HEADERS`."""


class PageHeadersMiddleware:
    """:data:`PAGE_HEADERS` on every answer under :data:`WEB_PATHS`, the ones no page route
    made too (an unknown path's 404, a wrong method's 405, the body limit's 413): a header a
    response set itself is left as it is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(WEB_PATHS):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in PAGE_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
