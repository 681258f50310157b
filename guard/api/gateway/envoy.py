"""Envoy ``ext_authz`` (HTTP service) endpoint: the pre-generation gate in front of any API.

Envoy sends the authorization request with the original method, the original path under the
configured ``path_prefix`` (``/v1/ext_authz``), the allowed headers and, with
``with_request_body``, the body (``x-envoy-auth-partial-body: true`` when it was cut short).
The guard key travels in ``x-guard-api-key`` (added by Envoy's ``headers_to_add``). The body
is read by the original path's adapter (:class:`~guard.api.gateway.flow.GatewayFlow`); the
operation comes from ``x-guard-operation``, a declared field, the route, or ``generate``.

Allowed → 200 with ``x-guard-decision`` and ``x-guard-decision-id`` (Envoy copies them upstream
when listed in ``allowed_upstream_headers``). Denied → 403 problem (503 when the guard cannot
decide), which Envoy returns to the client; a body the guard cannot account for → 4xx.

ext_authz never sees the upstream's answer, so it **cannot watermark or sign** outputs: use the
ext_proc server (``guard serve-ext-proc``) where outputs must be stamped.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from guard.api.auth import WRITERS, require_gateway_key, service_of
from guard.api.gateway.body import single_headers
from guard.api.keys import ApiKey
from guard.api.routes.common import COMMON_ERRORS, DENIED, NOT_FOUND, UPLOAD_ERRORS, denial
from guard.api.schemas import GatewayAllowOut
from guard.api.views import hidden_from
from guard.errors import PayloadTooLarge

router = APIRouter(tags=["gateway"])
PATH_PREFIX = "/v1/ext_authz"
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@router.api_route(
    PATH_PREFIX + "/{original_path:path}",
    methods=METHODS,
    responses={
        **COMMON_ERRORS,
        # An original path with control characters matches no route.
        **NOT_FOUND,
        **UPLOAD_ERRORS,
        **DENIED,
    },
    response_model=GatewayAllowOut,
    summary="Envoy ext_authz check of the original request",
)
async def ext_authz(
    request: Request,
    original_path: str,
    key: Annotated[ApiKey, Depends(require_gateway_key(*WRITERS))],
) -> Response:
    if request.headers.get("x-envoy-auth-partial-body", "").lower() == "true":
        raise PayloadTooLarge(
            "Envoy forwarded only part of the body, so the image cannot be checked; raise "
            "with_request_body.max_request_bytes above the largest upload"
        )
    body = await request.body()
    service = service_of(request)
    checked = await run_in_threadpool(
        service.gateway.check_request,
        method=request.method,
        path=_original_path(request),
        headers=single_headers(request.headers.items()),
        body=body,
        requester=key.requester,
    )
    for decision in checked.decisions:
        await run_in_threadpool(service.observe, key, decision)
    if not checked.allowed:
        hidden = hidden_from(service.guard.registry, key.tenant)
        receipt = checked.receipt.to_dict()
        return await run_in_threadpool(denial, checked.decision, hidden, receipt=receipt)
    # Envoy reads the headers (and ignores the body) of an allowing answer.
    headers = checked.allow_headers()
    return JSONResponse(
        {
            "verdict": checked.decision.verdict.value,
            "decision_id": checked.decision.decision_id,
            "decision_ids": [d.decision_id for d in checked.decisions],
            "audit_index": checked.receipt.leaf_index,
        },
        headers=headers,
    )


def _original_path(request: Request) -> str:
    """The original path and query as Envoy sent them, still percent-encoded: the route map
    decodes once, as the upstream's router does (``original_path`` is decoded already)."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1")[len(PATH_PREFIX) :] or "/"
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path
