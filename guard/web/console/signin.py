"""``/console/sign-in`` and ``/console/sign-out``: an API key in, a session cookie out.

The key is typed (or pasted) into a form posted with the CSRF token, never put in a URL; a
wrong key, a revoked one or a key of the wrong role gets the same page again with one message
(keys cannot be probed), after a per-address rate limit. Signing out ends the session on the
server, not only the cookie.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from guard.errors import Forbidden, Unauthenticated
from guard.web.console.access import (
    ConsoleRoute,
    check_form,
    render_console,
    sessions_of,
)
from guard.web.console.sessions import SESSION_COOKIE
from guard.web.pages import check_redeem_rate
from guard.web.security import CSRF_FIELD, PAGE_HEADERS, clear_cookie, set_cookie

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

REFUSED = (
    "That key cannot open the console: it is unknown, revoked, or not an auditor's, an "
    "admin's or the operator's."
)


@router.get("/sign-in")
def sign_in_page(request: Request) -> Response:
    return render_console(request, "console/sign_in.html", None)


@router.post("/sign-in")
async def sign_in(
    request: Request,
    key: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(alias=CSRF_FIELD, max_length=200)],
) -> Response:
    # A bucket of its own: attempts on the person's pages from the same address (or someone
    # draining that bucket) never lock an auditor out, nor the other way round.
    check_redeem_rate(request, bucket="console-sign-in")
    check_form(request, csrf)
    try:
        secret, _ = await run_in_threadpool(sessions_of(request).sign_in, key)
    except (Unauthenticated, Forbidden):
        return render_console(request, "console/sign_in.html", None, {"error": REFUSED}, status=401)
    response = RedirectResponse("/console", status_code=303, headers=PAGE_HEADERS)
    set_cookie(request, response, SESSION_COOKIE, secret)
    return response


@router.post("/sign-out")
async def sign_out(
    request: Request, csrf: Annotated[str, Form(alias=CSRF_FIELD, max_length=200)]
) -> Response:
    check_form(request, csrf)
    await run_in_threadpool(sessions_of(request).sign_out, request.cookies.get(SESSION_COOKIE))
    response = render_console(request, "console/signed_out.html", None)
    clear_cookie(request, response, SESSION_COOKIE)
    return response
