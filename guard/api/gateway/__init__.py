"""The guard in front of a generator someone else runs.

- :mod:`guard.api.gateway.envoy`: an Envoy ``ext_authz`` HTTP endpoint (the request check
  only: it never sees the answer, so it cannot stamp);
- :mod:`guard.api.gateway.ext_proc`: an Envoy ``ext_proc`` gRPC server (check the request,
  scan and stamp the answer), ``guard serve-ext-proc``;
- :class:`GuardMiddleware`: plain ASGI middleware around a Starlette/FastAPI generation app.

All three run one :class:`GatewayFlow`: a route's :class:`Adapter` declares which fields of
an API's requests and responses carry images, prompts and the operation
(:mod:`guard.api.gateway.adapters`, one module per API family); an image the adapter does not
account for refuses the request (:mod:`guard.api.gateway.claims`).
"""

from __future__ import annotations

from guard.api.gateway.adapters import ADAPTERS, Adapter, Field, Role, adapter_named
from guard.api.gateway.flow import CheckedRequest, GatewayFlow
from guard.api.gateway.middleware import GuardMiddleware
from guard.api.gateway.responses import ResponseOutcome
from guard.api.gateway.routes import Route, RouteMap

__all__ = [
    "ADAPTERS",
    "Adapter",
    "CheckedRequest",
    "Field",
    "GatewayFlow",
    "GuardMiddleware",
    "ResponseOutcome",
    "Role",
    "Route",
    "RouteMap",
    "adapter_named",
]
