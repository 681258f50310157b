"""``create_app(settings)``: the HTTP service (``guard serve`` runs it under uvicorn).

    >>> from guard.api import create_app
    >>> app = create_app(Settings(data_dir="/srv/guard"))     # doctest: +SKIP
    >>> # uvicorn.run(app, host="127.0.0.1", port=8080)

Layers, outside in: request metrics → body size limit (413 before reading) → JSON bodies must
be text (422 ``invalid_text``) → FastAPI (auth and rate limits per route, problem+json errors).
Routes: ``guard.api.routes.*``, the Envoy endpoint in ``guard.api.gateway.envoy`` and the
person's pages of ``guard.web`` (``/consent/{token}``, ``/me``; not in the schema); the OpenAPI
document is at ``/openapi.json``, Swagger UI at ``/docs`` and ReDoc at ``/redoc`` (assets served
locally).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline

from guard._version import __version__
from guard.api.gateway import envoy
from guard.api.json_text import JsonTextCheck
from guard.api.metrics import RequestMetricsMiddleware
from guard.api.problems import install_handlers
from guard.api.routes import (
    audit,
    blocklist,
    consent_requests,
    decisions,
    jobs,
    ops,
    registry,
    usage,
)
from guard.api.schemas import Problem
from guard.api.service import Service
from guard.api.uploads import BodySizeLimit
from guard.bootstrap import refuse_bad_keys
from guard.config import Settings
from guard.pipeline import Guard
from guard.web import mount_web
from guard.web.security import PageHeadersMiddleware

DESCRIPTION = """\
Consent and public-figure gate, identity-preserving edits, provenance (watermark + C2PA) and a
tamper-evident audit log for AI image edits of real people.

**Auth**: `Authorization: Bearer lg_…` (or `x-guard-api-key`), a key from `guard keys create`.
Tenant roles: `admin`, `integrator`, `auditor`; every object belongs to the key's tenant. The
`operator` role has no tenant: the blocklist and public-figure links are its alone.

**Errors and denials** are RFC 9457 `application/problem+json`; `type` is
`https://likeness-guard.dev/problems/<code>` with the error code or the decision's deny reason
code (`no_consent`, `public_figure`, `consent_revoked`, `unavailable`, …).
"""


def create_app(settings: Settings | None = None, *, guard: Guard | None = None) -> FastAPI:
    """The service for ``settings`` (default: ``GUARD_*`` variables / ``guard.toml``).
    ``guard`` lets a test or an embedding process hand in a prepared :class:`Guard`."""
    settings = settings or (guard.settings if guard else Settings())
    service = Service.build(settings, guard)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # A weak or garbage key stops the start (uvicorn exits 3) with the file named; a
        # missing one only makes /readyz 503 (guard.bootstrap.refuse_bad_keys).
        refuse_bad_keys(settings)
        yield
        service.guard.close()

    # Swagger UI (/docs) and ReDoc (/redoc) with their scripts and styles served from the
    # installed fastapi-offline package (/static-offline-docs), not a CDN: a guard often runs
    # where the internet is not reachable, and its API docs should still show. No validator
    # badge either: it would send the schema to validator.swagger.io.
    app = FastAPIOffline(
        swagger_ui_parameters={"validatorUrl": None},
        lifespan=lifespan,
        title="Likeness Guard",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=[
            {"name": "decisions", "description": "Checks, edits, stamps and verification."},
            {"name": "jobs", "description": "Long edits as jobs: progress, result, webhooks."},
            {"name": "registry", "description": "Subjects (people) and consent grants."},
            {"name": "blocklist", "description": "The public-figure blocklist (operator)."},
            {"name": "audit", "description": "The tamper-evident log (admin, auditor)."},
            {"name": "usage", "description": "Usage-monitoring flags (admin)."},
            {"name": "gateway", "description": "Envoy ext_authz."},
            {"name": "operations", "description": "Health, readiness, metrics."},
        ],
    )
    app.state.service = service
    install_handlers(app)
    for module in (decisions, jobs, registry, consent_requests, blocklist, audit, usage, ops):
        app.include_router(module.router)
    app.include_router(envoy.router)
    # The person's own pages (/consent/{token}, /me) and their static assets (guard/web).
    mount_web(app)

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                Problem.model_json_schema()
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    # Inside the size limit (added later = outside): it buffers JSON bodies to refuse lone
    # surrogates and non-UTF-8 (422 invalid_text) before any route parses them.
    app.add_middleware(JsonTextCheck, skip=(envoy.PATH_PREFIX,))
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    # Outside the size limit, so that its 413 under the pages' paths carries their headers.
    app.add_middleware(PageHeadersMiddleware)
    app.add_middleware(RequestMetricsMiddleware, metrics=service.metrics)
    return app


def app_from_environment() -> FastAPI:
    """Uvicorn factory (``guard serve``; each worker builds its own from the environment)."""
    return create_app(Settings())
