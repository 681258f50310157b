"""``guard serve``: the service under uvicorn, in one process or as a supervisor of workers.

With several workers the listening socket is made here, with ``IPPROTO_TCP``, instead of by
uvicorn: uvicorn 0.54's ``Config.bind_socket`` leaves the socket's ``proto`` at 0, accepted
connections inherit it, and asyncio then never sets ``TCP_NODELAY`` on them, so every keep-alive
response after the first waits for the client's delayed ACK (~40 ms on Linux; Kludex/uvicorn
issue 3149). Measured here: 23 requests/s on ``/healthz`` with uvicorn's socket, against 1,600
with one worker.
"""

from __future__ import annotations

import logging
import socket

import uvicorn
from uvicorn.supervisors import Multiprocess

from guard.errors import ConfigurationError

APP = "guard.api.app:app_from_environment"
log = logging.getLogger("guard.api")


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


def serve(*, host: str, port: int, workers: int, log_level: str) -> None:
    """Run until interrupted. Each worker builds its app from the environment."""
    if workers == 1:
        uvicorn.run(APP, factory=True, host=host, port=port, log_level=log_level)
        return
    config = uvicorn.Config(
        APP, factory=True, host=host, port=port, workers=workers, log_level=log_level
    )
    sock = listening_socket(host, port)
    log.warning("Likeness Guard on http://%s:%d with %d workers", host, port, workers)
    Multiprocess(config, sockets=[sock]).run()
