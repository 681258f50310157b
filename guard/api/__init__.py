"""The HTTP service and gateway adapters.

    >>> from guard.api import create_app
    >>> app = create_app()                       # doctest: +SKIP  (uvicorn: `guard serve`)

``ApiKeyStore`` and ``Role`` manage API keys (``guard keys create``); ``GuardMiddleware`` wraps
an existing ASGI generation app. See docs/service.md.
"""

from __future__ import annotations

from guard.api.app import create_app
from guard.api.gateway import GuardMiddleware
from guard.api.keys import ApiKey, ApiKeyStore, IssuedKey, Role

__all__ = ["ApiKey", "ApiKeyStore", "GuardMiddleware", "IssuedKey", "Role", "create_app"]
