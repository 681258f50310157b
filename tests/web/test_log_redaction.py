"""The person's tokens stay out of the access log: uvicorn logs every request's path, and
``/consent/lgr_…`` and ``/me/link/lgm_…`` are bearer tokens (no browser, no server)."""

from __future__ import annotations

import logging
import logging.config

from uvicorn.logging import AccessFormatter

from guard.api.server import RedactTokens, log_config, redact_access_log

REQUEST = "lgr_creq_0123456789abcdef01234567.1767225600.c2VjcmV0LXNlY3JldA.dGFn"
LINK = "lgm_mlk_0123456789abcdef01234567.1799000000.c2VjcmV0.dGFn"


def _access_record(path: str) -> logging.LogRecord:
    # What uvicorn's h11/httptools protocols log for each response.
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", path, "1.1", 200),
        None,
    )


def test_the_access_log_keeps_only_the_prefix_of_tokens() -> None:
    config = log_config()
    assert config["loggers"]["uvicorn.access"]["filters"] == ["redact_tokens"]
    assert config["filters"]["redact_tokens"]["()"] == "guard.api.server.RedactTokens"
    formatter = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s')
    for path, shown in (
        (f"/consent/{REQUEST}", "/consent/lgr_…"),
        (f"/consent/{REQUEST}/accept", "/consent/lgr_…/accept"),
        (f"/me/link/{LINK}", "/me/link/lgm_…"),
        (f"/me/link/{LINK}?x=1", "/me/link/lgm_…?x=1"),
        ("/me", "/me"),
    ):
        record = _access_record(path)
        assert RedactTokens().filter(record)
        line = formatter.format(record)
        assert f'"GET {shown} HTTP/1.1" 200' in line, line
        assert "c2VjcmV0" not in line and "dGFn" not in line


def test_one_process_keeps_the_filter_through_uvicorns_logging_setup() -> None:
    access = logging.getLogger("uvicorn.access")
    before = list(access.filters)
    try:
        redact_access_log()
        redact_access_log()  # once only
        # What uvicorn.run does next: its own logging configuration (filters are kept).
        from uvicorn.config import LOGGING_CONFIG

        logging.config.dictConfig(LOGGING_CONFIG)
        assert sum(isinstance(f, RedactTokens) for f in access.filters) == 1
        record = _access_record(f"/me/link/{LINK}")
        assert access.filter(record)
        assert record.args is not None and record.args[2] == "/me/link/lgm_…"
    finally:
        access.filters[:] = before
