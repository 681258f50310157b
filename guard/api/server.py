"""``guard serve``: the service under uvicorn, in one process or as a supervisor of workers.

With several workers the listening socket is made here, with ``IPPROTO_TCP``, instead of by
uvicorn: uvicorn 0.54's ``Config.bind_socket`` leaves the socket's ``proto`` at 0, accepted
connections inherit it, and asyncio then never sets ``TCP_NODELAY`` on them, so every keep-alive
response after the first waits for the client's delayed ACK (~40 ms on Linux; Kludex/uvicorn
issue 3149). Measured here: 23 requests/s on ``/healthz`` with uvicorn's socket, against 1,600
with one worker.

uvicorn's access log names every request's path, and the person's pages carry bearer tokens in
theirs (``/consent/lgr_…``, ``/me/link/lgm_…``): :class:`RedactTokens`, on the access logger of
every worker, keeps each token's prefix and replaces the rest with ``…`` (one process: put on
the logger before uvicorn starts; workers: in the logging configuration each one applies).
"""

from __future__ import annotations

import copy
import logging
import re
import socket
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.supervisors import Multiprocess

from guard.errors import ConfigurationError

APP = "guard.api.app:app_from_environment"
log = logging.getLogger("guard.api")


_TOKEN = re.compile(r"\b(lg[rm]_)[^/?#&\s\"]+")


def redact_tokens(text: str) -> str:
    """``text`` with every consent-request (``lgr_``) and management-link (``lgm_``) token
    cut to its prefix: ``/me/link/lgm_…``."""
    return _TOKEN.sub(r"\1…", text)


class RedactTokens(logging.Filter):
    """Removes the person's tokens from access-log records (their arguments and message)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_tokens(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        elif isinstance(record.args, dict):
            record.args = {
                key: redact_tokens(arg) if isinstance(arg, str) else arg
                for key, arg in record.args.items()
            }
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration, with :class:`RedactTokens` on its access log."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": f"{__name__}.RedactTokens"}
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_tokens"]
    return config


def redact_access_log() -> None:
    """Put :class:`RedactTokens` on uvicorn's access logger in this process (uvicorn's logging
    configuration keeps a logger's filters; spawned workers get it from :func:`log_config`)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


def serve(
    *, host: str, port: int, workers: int, log_level: str, trusted_proxies: list[str]
) -> None:
    """Run until interrupted. Each worker builds its app from the environment. Forwarded
    headers are believed only from ``trusted_proxies`` (GUARD_TRUSTED_PROXIES)."""
    if workers == 1:
        redact_access_log()
        uvicorn.run(
            APP,
            factory=True,
            host=host,
            port=port,
            log_level=log_level,
            forwarded_allow_ips=trusted_proxies,
        )
        return
    config = uvicorn.Config(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_config=log_config(),
        forwarded_allow_ips=trusted_proxies,
    )
    sock = listening_socket(host, port)
    log.warning("Likeness Guard on http://%s:%d with %d workers", host, port, workers)
    Multiprocess(config, sockets=[sock]).run()
