"""RFC 9457 problem details: every error and every denial the service answers with.

``type`` is a stable URI per code: ``https://likeness-guard.dev/problems/<code>``, where
``<code>`` is an error code (``invalid_input``, ``payload_too_large``, ``unauthenticated``, ...)
or, for a denied decision, the decision's first deny reason code (``no_consent``,
``public_figure``, ``unavailable``, ...), so clients branch on the same strings as the library.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from guard.api.limits import retry_after_header
from guard.db import DatabaseFault
from guard.errors import GuardError, RateLimited
from guard.policy import Decision, ReasonCode

PROBLEM_BASE = "https://likeness-guard.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

_STATUS_CODES = {
    400: "invalid_input",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


def problem_type(code: str) -> str:
    return PROBLEM_BASE + code


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body = {
        "type": problem_type(code),
        "title": title or code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
        **extensions,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def denial_code(decision: Decision) -> str:
    """The code a denied decision is reported under: its first deny reason (a decision's
    reasons include every face's)."""
    for reason in decision.reasons:
        if reason.denies:
            return reason.code.value
    return ReasonCode.UNAVAILABLE.value


def denial_status(decision: Decision) -> int:
    """503 when the guard could not decide (fail closed), else 403."""
    return 503 if decision.unavailable else 403


def guard_error_response(exc: GuardError) -> JSONResponse:
    headers = None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": retry_after_header(exc.retry_after)}
    return problem(exc.http_status, exc.code, exc.message, headers=headers)


def install_handlers(app: FastAPI) -> None:
    async def on_guard_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GuardError)
        return guard_error_response(exc)

    async def on_validation(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        # Locations and messages only: echoing the rejected input could echo an image.
        errors = [
            {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg"))}
            for error in exc.errors()
        ]
        return problem(422, "invalid_request", "the request does not match the API", errors=errors)

    async def on_http(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, code, str(exc.detail), headers=headers)

    async def on_database_error(_request: Request, exc: Exception) -> Response:
        # guard.db turns a database fault into Unavailable at the session; one that escapes it
        # anyway is still the database failing, not a bug to crash on: 503, never 500.
        if isinstance(exc, IntegrityError):
            return problem(409, "conflict", "the change conflicts with a stored row")
        what = (
            DatabaseFault.of(exc).what
            if isinstance(exc, DBAPIError | PoolTimeoutError)
            else f"database error ({type(exc).__name__})"
        )
        return problem(503, "unavailable", f"the database is unavailable: {what}")

    app.add_exception_handler(GuardError, on_guard_error)
    app.add_exception_handler(SQLAlchemyError, on_database_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
