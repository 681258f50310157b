"""``/healthz`` (the process answers), ``/readyz`` (every component a decision depends on can
be read: not ready means requests would be denied with ``unavailable``) and ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from guard.api.auth import service_of
from guard.api.schemas import ReadinessOut
from guard.api.service import Service
from guard.errors import GuardError

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _checks(service: Service) -> dict[str, Callable[[], object]]:
    """Each key is checked as the guard uses it (the file as it is now, see guard.keyfile); the
    template key by decrypting the newest stored template, so a wrong key is not ready."""
    guard = service.guard
    return {
        "database": guard.db.require_schema,
        "policy": guard.policies.current,
        "blocklist": guard.blocklists.current,
        "hmac_key": guard.keys.hasher,
        "template_key": guard.check_template_key,
        "signing_key": guard.provenance.credentials,
        "audit_key": guard.audit.current_signer,
    }


@router.get(
    "/readyz",
    response_model=ReadinessOut,
    responses={503: {"model": ReadinessOut, "description": "Not ready: see the failed checks."}},
)
def readyz(request: Request) -> Any:
    service = service_of(request)
    checks: dict[str, str] = {}
    for name, check in _checks(service).items():
        try:
            check()
            checks[name] = "ok"
        except GuardError as exc:
            checks[name] = f"unavailable: {exc.message}"
        except Exception as exc:  # a broken component must read "not ready", never crash
            checks[name] = f"unavailable: {type(exc).__name__}: {exc}"
    ready = all(value == "ok" for value in checks.values())
    # Rate limiting degrades (per-worker fallback) rather than failing readiness.
    healthy = service.limits.healthy()
    checks["rate_limits"] = (
        f"ok ({service.limits.backend})" if healthy else "degraded: in-process fallback"
    )
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus text format."""
    service = service_of(request)
    return Response(service.metrics.exposition(), media_type=service.metrics.content_type)
