"""A real uvicorn server on 127.0.0.1 around a guard, with API keys per tenant and role, and
the multipart parts the service's routes take."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from guard import Guard
from guard.api import ApiKeyStore, Role
from guard.api.keys import NO_TENANT
from guard.samples import sample_bytes


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
        """A key of ``tenant`` in ``role``; the operator's key (no tenant) for ``OPERATOR``."""
        if role is Role.OPERATOR:
            tenant = NO_TENANT
        if (tenant, role) not in self.tokens:
            store = ApiKeyStore(self.guard.db)
            if role is Role.OPERATOR:
                issued = store.create(tenant=None, role=role)
            else:
                issued = store.create(tenant=tenant, role=role, requester=f"{tenant}/app")
            self.tokens[(tenant, role)] = issued.token
        return self.tokens[(tenant, role)]

    def client(self, tenant: str = "acme", role: Role = Role.INTEGRATOR) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.token(tenant, role)}"},
            timeout=60,
        )


LiveFactory = Callable[..., LiveService]
"""The ``live`` fixture (tests/e2e/conftest.py): ``live(**settings)`` serves a new guard."""


def serve(app: Any) -> Iterator[str]:
    """Run ``app`` on a free port: yields its base URL, stops the server when resumed."""
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


def image_part(name: str = "astronaut") -> dict[str, tuple[str, bytes, str]]:
    """A sample photo as the ``image`` part of a multipart request."""
    data = sample_bytes(name)  # type: ignore[arg-type]
    media_type = "image/jpeg" if name == "t1" else "image/png"
    return {"image": (f"{name}.img", data, media_type)}


def params(**values: object) -> dict[str, str]:
    """``values`` as the JSON ``params`` part of a multipart request."""
    return {"params": json.dumps(values)}
