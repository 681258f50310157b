"""Who may see a console page, and how a console page is rendered.

Every console route takes the :func:`viewer` dependency: the session cookie's
:class:`~guard.web.console.sessions.Viewer`, read again on every request. Without a working
session a page answers a redirect to the sign-in page (a JSON or file route: 401). Pages render
``console/*.html`` with the viewer and the CSRF token (:func:`render_console`); errors are pages
of the console (:class:`ConsoleRoute`), never a stack trace or a person's-site wording.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from guard.api.auth import service_of
from guard.errors import GuardError
from guard.web.console.sessions import SESSION_COOKIE, ConsoleSessions, SignInNeeded, Viewer
from guard.web.pages import PageRoute, render
from guard.web.security import PAGE_HEADERS, Csrf

SIGN_IN_PATH = "/console/sign-in"

_TITLES = {
    400: "The request could not be read",
    401: "Sign in first",
    403: "Not allowed",
    404: "Not found",
    409: "This cannot be done now",
    413: "The file is too large",
    415: "Not an image the guard can read",
    422: "The file could not be used",
    429: "Too many requests",
    503: "The service is unavailable",
}


class ConsoleRoute(PageRoute):
    """Console errors as console pages; no session: the sign-in page (a page) or 401 (data)."""

    error_template = "console/error.html"
    error_titles = _TITLES
    site = "the console"

    def failed(self, request: Request, error: GuardError, status: int) -> Response:
        if isinstance(error, SignInNeeded) and not _wants_data(request):
            return RedirectResponse(SIGN_IN_PATH, status_code=303, headers=PAGE_HEADERS)
        return super().failed(request, error, status)


def _wants_data(request: Request) -> bool:
    return request.url.path.endswith((".json", ".csv", ".jsonl"))


def sessions_of(request: Request) -> ConsoleSessions:
    sessions: ConsoleSessions = request.app.state.console_sessions
    return sessions


def viewer(request: Request) -> Viewer:
    """The dependency every console route takes (see the module docstring)."""
    return sessions_of(request).viewer(request.cookies.get(SESSION_COOKIE))


def check_form(request: Request, token: str | None) -> None:
    """Refuse a console form without this browser's CSRF token (403)."""
    Csrf(request, service_of(request).guard.keys.hasher()).verify(token)


def render_console(
    request: Request,
    template: str,
    seen_by: Viewer | None,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A console page: ``template`` with the viewer (for the header) and ``context``."""
    return render(
        request,
        template,
        {"viewer": seen_by, "path": request.url.path, **(context or {})},
        status=status,
        headers=headers,
    )
