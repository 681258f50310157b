"""A real uvicorn server on 127.0.0.1 around a guard on this test's database (SQLite and
PostgreSQL), API keys per tenant and role, and Redis when a test asks for it."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn

from guard import Guard
from guard.api import ApiKeyStore, Role, create_app
from guard.samples import sample_bytes
from tests.conftest import GuardFactory

REDIS_URL = os.environ.get("GUARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LiveService:
    guard: Guard
    base_url: str
    tokens: dict[tuple[str, Role], str] = field(default_factory=dict)

    def token(self, tenant: str, role: Role) -> str:
        if (tenant, role) not in self.tokens:
            issued = ApiKeyStore(self.guard.db).create(
                tenant=tenant, role=role, requester=f"{tenant}/app"
            )
            self.tokens[(tenant, role)] = issued.token
        return self.tokens[(tenant, role)]

    def client(self, tenant: str = "acme", role: Role = Role.INTEGRATOR) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.token(tenant, role)}"},
            timeout=60,
        )


def serve(app: Any) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


LiveFactory = Callable[..., LiveService]


@pytest.fixture
def live(make_guard: GuardFactory) -> Iterator[LiveFactory]:
    """``live(**settings)``: a guard with those settings served over HTTP."""
    servers: list[Iterator[str]] = []

    def factory(**overrides: object) -> LiveService:
        guard = make_guard(**overrides)
        running = serve(create_app(guard=guard))
        servers.append(running)
        return LiveService(guard, next(running))

    yield factory
    for running in servers:
        next(running, None)


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        message = f"Redis at {REDIS_URL} is not reachable ({exc})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the Redis tests")
        pytest.skip(f"!!! SKIPPED: {message}")
    return REDIS_URL


def image_part(name: str = "astronaut") -> dict[str, tuple[str, bytes, str]]:
    data = sample_bytes(name)  # type: ignore[arg-type]
    media_type = "image/jpeg" if name == "t1" else "image/png"
    return {"image": (f"{name}.img", data, media_type)}


def params(**values: object) -> dict[str, str]:
    return {"params": json.dumps(values)}


EVIDENCE = hashlib.sha256(b"signed consent form").hexdigest()
