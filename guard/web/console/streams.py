"""Streamed downloads (the decisions CSV, the audit export) that cannot look complete when they
are not.

A streamed response sends its status before its body, so a database that fails half-way
through cannot turn it into a 503 any more. Two rules make that safe: the first chunk is read
before the response starts (a database that is down from the start is a 503 page, as every
other page), and every complete file ends with a line that says so, while a file cut short by
a fault ends with a line that says *that* instead (and the fault goes to the server log). A
download without its closing line was cut by the network: the reader knows it is incomplete.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import iterate_in_threadpool
from starlette.responses import StreamingResponse

from guard.errors import Unavailable
from guard.web.security import PAGE_HEADERS

log = logging.getLogger("guard.web")

INCOMPLETE = "the service stopped answering while this file was written; it is incomplete"


def _guarded(chunks: Iterator[str], first: str, failed: Callable[[str], str]) -> Iterator[str]:
    yield first
    try:
        yield from chunks
    except (Unavailable, SQLAlchemyError):
        log.exception("a console download was cut short")
        yield failed(INCOMPLETE)


def streamed_download(
    chunks: Iterator[str],
    *,
    media_type: str,
    filename: str,
    failed: Callable[[str], str],
    headers: dict[str, str] | None = None,
) -> StreamingResponse:
    """A download of ``chunks`` (which end with their own completion line), whose first chunk
    is read now (see the module docstring); ``failed(message)`` is the line that ends a file
    cut short."""
    first = next(chunks, "")
    return StreamingResponse(
        iterate_in_threadpool(_guarded(chunks, first, failed)),
        media_type=media_type,
        headers={
            **PAGE_HEADERS,
            "Content-Disposition": f'attachment; filename="{filename}"',
            **(headers or {}),
        },
    )
