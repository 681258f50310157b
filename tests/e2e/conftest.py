"""A real uvicorn server on 127.0.0.1 around a guard on this test's database, API keys per
tenant and role (tests/support/live.py), and Redis when a test asks for it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from guard.api import create_app
from tests.support.guards import GuardFactory
from tests.support.live import LiveFactory, LiveService, serve

REDIS_URL = os.environ.get("GUARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


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
