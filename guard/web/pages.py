"""Rendering the person's pages, and turning every error into a page a person can read.

Templates are Jinja2 (autoescaped) from ``guard/web/templates``; each response carries the
headers of :mod:`guard.web.security`. :class:`PageRoute` is the route class of the web router:
a typed error (:class:`~guard.errors.GuardError`), a malformed form or anything unexpected
becomes an HTML page with the right 4xx/5xx status and a plain message, never a stack trace or
a problem+json body (those are for programs, these pages are for people). A 5xx page says only
that the service cannot answer: the error's own message (which may name a database URL or a key
file) goes to the server log, never to the page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, TemplateError, select_autoescape
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response

from guard.api.auth import service_of
from guard.api.limits import retry_after_header
from guard.errors import GuardError, RateLimited
from guard.web.security import PAGE_HEADERS, Csrf

log = logging.getLogger("guard.web")

_ENV = Environment(
    loader=PackageLoader("guard.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: datetime | None) -> str:
    """A date a person reads: ``6 December 2026, 09:15 UTC``."""
    if value is None:
        return "no end date"
    return f"{value.day} {value:%B %Y, %H:%M} UTC"


_ENV.filters["when"] = _when

_TITLES = {
    400: "This request could not be read",
    401: "Open your link first",
    403: "Not allowed",
    404: "This link is not valid",
    409: "This cannot be done now",
    410: "This link no longer works",
    413: "The photo is too large",
    415: "This file is not a photo we can read",
    422: "The photo could not be used",
    429: "Too many attempts",
    503: "The service is unavailable",
}


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """``template`` with ``context`` (plus a CSRF form token), with the page headers."""
    csrf = Csrf(request, service_of(request).guard.keys.hasher())
    body = _ENV.get_template(template).render(
        {"csrf_token": csrf.form_token, "static": "/web-static", **(context or {})}
    )
    response = HTMLResponse(body, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})
    csrf.attach(response)
    return response


SERVER_SIDE = "The service cannot answer right now. Please try again later."


def error_page(
    request: Request,
    status: int,
    message: str,
    *,
    template: str = "error.html",
    titles: dict[int, str] | None = None,
    **extra: Any,
) -> HTMLResponse:
    headers = extra.pop("headers", None)
    if status >= 500:
        message = SERVER_SIDE
    title = (titles or _TITLES).get(status, "Something went wrong")
    try:
        return render(
            request,
            template,
            {"title": title, "message": message, **extra},
            status=status,
            headers=headers,
        )
    except GuardError:
        # The keys themselves are unavailable (no CSRF token can be made): still a page.
        body = _ENV.get_template(template).render(
            {"title": title, "message": message, "static": "/web-static"}
        )
        return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


@dataclass(frozen=True)
class RedeemLimit:
    """Token-bucket limits on looking up a token, per client address (shared with the API's
    limiter: Redis when configured)."""

    rate_per_second: float = 0.5
    burst: int = 30
    name: str = "web-redeem"
    """The bucket's name (a test's own limit uses its own bucket)."""


def check_redeem_rate(request: Request, *, bucket: str = "") -> None:
    """Take one attempt from the client address's bucket (``bucket`` names a bucket of its
    own: the console's sign-in does not share the person's pages' attempts)."""
    limit: RedeemLimit = getattr(request.app.state, "web_redeem_limit", RedeemLimit())
    client = request.client.host if request.client else "unknown"
    name = f"{limit.name}-{bucket}" if bucket else limit.name
    wait = service_of(request).limits.take(
        f"{name}:{client}", rate=limit.rate_per_second, burst=limit.burst
    )
    if wait > 0:
        raise RateLimited(
            f"Too many attempts from your connection. Please wait {wait:.0f} seconds and "
            "try again.",
            retry_after=wait,
        )


class PageRoute(APIRoute):
    """Errors of the person's pages as pages (see the module docstring). A site of its own
    (the compliance console) subclasses it with its own error template and titles."""

    error_template = "error.html"
    error_titles = _TITLES
    site = "the person's site"

    def error_page(self, request: Request, status: int, message: str, **extra: Any) -> Response:
        return error_page(
            request,
            status,
            message,
            template=self.error_template,
            titles=self.error_titles,
            **extra,
        )

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RateLimited as exc:
                headers = {"Retry-After": retry_after_header(exc.retry_after)}
                return self.error_page(request, 429, exc.message, headers=headers)
            except GuardError as exc:
                status = exc.http_status if 400 <= exc.http_status < 600 else 500
                if status >= 500:
                    log.error("a page of %s failed: %s: %s", self.site, exc.code, exc.message)
                return self.failed(request, exc, status)
            except RequestValidationError:
                return self.error_page(
                    request, 400, "The form was incomplete. Go back and fill in every field."
                )
            except HTTPException as exc:
                if exc.status_code >= 500:
                    log.error("a page of %s failed: %s", self.site, exc.detail)
                return self.error_page(request, exc.status_code, str(exc.detail))
            except SQLAlchemyError:
                # A database fault that escaped guard.db's mapping is still the database
                # failing: 503, as the API answers it (guard/api/problems.py), never a 500.
                # Logged without the request (it may hold a photo or a token).
                log.exception("a page of %s lost its database", self.site)
                return self.error_page(request, 503, SERVER_SIDE)
            except (TypeError, ValueError, AttributeError, KeyError, OverflowError, TemplateError):
                # A page that could not be made from what is stored (an audit entry of a shape
                # the guard never writes: the log accepts any JSON object): still a page, with
                # the page headers and nothing of the fault, which goes to the server log.
                log.exception("a page of %s could not be made", self.site)
                return self.error_page(request, 500, SERVER_SIDE)

        return page_handler

    def failed(self, request: Request, error: GuardError, status: int) -> Response:
        """The page for a typed error (a site may answer some errors otherwise)."""
        return self.error_page(request, status, error.message)
