"""Gateway adapters: put the guard in front of a generator someone else runs.

- :mod:`guard.api.gateway.envoy`: an Envoy ``ext_authz`` HTTP endpoint (pre-generation check);
- :class:`GuardMiddleware`: plain ASGI middleware around a Starlette/FastAPI generation app
  (check before, stamp after).
"""

from __future__ import annotations

from guard.api.gateway.extract import GatewayRequest, extract_request
from guard.api.gateway.middleware import GuardMiddleware

__all__ = ["GatewayRequest", "GuardMiddleware", "extract_request"]
