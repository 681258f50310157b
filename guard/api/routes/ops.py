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


# Every decision's audit append updates this table's one row (guard.audit.log), so a decision
# can be recorded only while it takes a write.
DECISION_WRITE_TABLE = "audit_state"


def _checks(service: Service) -> dict[str, Callable[[], object]]:
    """Each key is checked as the guard uses it (the file as it is now, see guard.keyfile); the
    template key by decrypting the newest stored template, so a wrong key is not ready. The
    database is checked three ways, each a way a decision fails that connecting alone misses:
    the schema at the newest migration, every table readable, the audit log writable (not a
    read-only server, no row lock held past the lock timeout)."""
    guard = service.guard
    return {
        "database": guard.db.check_schema,
        "database_tables": guard.db.check_tables,
        "database_writable": lambda: guard.db.check_writable(DECISION_WRITE_TABLE),
        "policy": guard.policies.current,
        "blocklist": guard.blocklists.current,
        "hmac_key": guard.keys.hasher,
        "template_key": guard.check_template_key,
        "signing_key": guard.provenance.credentials,
        "audit_key": guard.audit.current_signer,
    }


# Checks that only repeat the database check's failure (each costing a connect timeout) when
# the database itself does not answer.
_NEEDS_DATABASE = ("database_tables", "database_writable")


def _run(check: Callable[[], object]) -> str:
    try:
        check()
    except GuardError as exc:
        return f"unavailable: {exc.message}"
    except Exception as exc:  # a broken component must read "not ready", never crash
        return f"unavailable: {type(exc).__name__}: {exc}"
    return "ok"


@router.get(
    "/readyz",
    response_model=ReadinessOut,
    responses={503: {"model": ReadinessOut, "description": "Not ready: see the failed checks."}},
)
def readyz(request: Request) -> Any:
    service = service_of(request)
    checks: dict[str, str] = {}
    for name, check in _checks(service).items():
        if name in _NEEDS_DATABASE and checks["database"] != "ok":
            checks[name] = "unavailable: not checked, the database check failed"
            continue
        checks[name] = _run(check)
    ready = all(value == "ok" for value in checks.values())
    # Rate limiting degrades (per-worker fallback) rather than failing readiness: a guard whose
    # Redis is gone still decides every request correctly, only its limits are per worker.
    healthy = service.limits.healthy()
    checks["rate_limits"] = (
        f"ok ({service.limits.backend})"
        if healthy
        else "degraded: Redis is not answering; rate limits use this worker's buckets"
    )
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus text format."""
    service = service_of(request)
    return Response(service.metrics.exposition(), media_type=service.metrics.content_type)
