"""``/v1/jobs``: long edits without holding a connection (docs/service.md, "Edit jobs").

``POST /v1/jobs`` takes what ``POST /v1/edits`` takes (plus an optional ``webhook_url``),
decides the input at once and answers 202 with the job, or the denial exactly as an edit's; a
worker (``guard worker``) runs it. ``GET /v1/jobs/{id}`` is its state, progress and, once
finished, its decisions and receipts; ``/events`` streams the same as Server-Sent Events;
``/result`` is the stamped image; ``DELETE`` cancels. A job is its tenant's: another tenant's
id reads as one that does not exist (404).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, UploadFile
from pydantic import Field
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from guard.api.auth import ALL_ROLES, WRITERS, require, service_of
from guard.api.keys import ApiKey
from guard.api.routes.common import (
    COMMON_ERRORS,
    CONFLICT,
    DENIED,
    GONE,
    NOT_FOUND,
    UPLOAD_ERRORS,
    denial,
)
from guard.api.routes.decisions import edit_request, params_part
from guard.api.schemas import EditParams
from guard.api.service import Service
from guard.api.uploads import image_bytes
from guard.api.views import hidden_from, receipt_body
from guard.jobs import Job, JobState, webhook_secret

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
EVENTS_POLL_S = 0.5  # how often an event stream reads its job (any host's worker may run it)


class JobParams(EditParams):
    """The JSON ``params`` part of ``POST /v1/jobs``: an edit's, and where to say it ended."""

    webhook_url: str | None = Field(
        default=None,
        max_length=2000,
        description="POSTed a signed JSON body when the job ends; only origins the operator "
        "allows (GUARD_WEBHOOK_ORIGINS).",
    )


def job_body(job: Job) -> dict[str, Any]:
    base = f"/v1/jobs/{job.id}"
    return {
        "id": job.id,
        "state": job.state.value,
        "phase": job.phase,
        "progress": {"done": job.progress_done, "total": job.progress_total},
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "cancel_requested": job.cancel_requested,
        "operation": job.operation,
        "input_sha256": job.input_sha256,
        "admission_decision_id": job.admission_decision_id,
        "outcome": job.outcome,
        "error": job.error,
        "result": (
            {
                "media_type": job.result_media_type,
                "sha256": job.result_sha256,
                "kept": job.result_kept,
                "expires_at": job.expires_at.isoformat() if job.expires_at else None,
            }
            if job.result_sha256
            else None
        ),
        "webhook": (
            {"state": job.webhook_state, "attempts": job.webhook_attempts}
            if job.webhook_url
            else None
        ),
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "links": {"self": base, "events": f"{base}/events", "result": f"{base}/result"},
    }


def _submit(
    service: Service, key: ApiKey, parsed: JobParams, data: bytes, idempotency_key: str | None
) -> Any:
    guard = service.guard
    request = edit_request(service, parsed, key, data)
    submitted = service.admission.run(
        (data,),
        service.jobs.submit,
        request,
        key_id=key.id,
        webhook_url=parsed.webhook_url,
        idempotency_key=idempotency_key,
    )
    body: dict[str, Any]
    if submitted.decision is None or submitted.receipt is None:
        # A retried submission: its job, as first made (no second decision).
        assert submitted.job is not None and submitted.replayed
        body = {"job": job_body(submitted.job), "replayed": True}
    else:
        service.observe(key, submitted.decision)
        hidden = hidden_from(guard.registry, key.tenant)
        receipt = receipt_body(submitted.receipt)
        if submitted.job is None:
            return denial(submitted.decision, hidden, receipts=[receipt])
        body = {
            "job": job_body(submitted.job),
            "input_decision": submitted.decision.to_dict(hidden=hidden),
            "receipt": receipt,
            "replayed": False,
        }
    location = body["job"]["links"]["self"]
    return JSONResponse(body, status_code=202, headers={"location": location})


@router.post(
    "",
    status_code=202,
    responses={**COMMON_ERRORS, **UPLOAD_ERRORS, **DENIED, **NOT_FOUND, **CONFLICT},
    summary="Submit an edit as a job (params: JobParams)",
)
async def create_job(
    request: Request,
    key: Annotated[ApiKey, Depends(require(*WRITERS))],
    params: Annotated[str, Form(description="JSON; the fields of JobParams.")],
    image: Annotated[UploadFile, File(description="JPEG, PNG, WebP, GIF, BMP or TIFF.")],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Retrying with the same key returns the job the first try made "
            "(`replayed`), not a second job; the same key with another request is 409.",
        ),
    ] = None,
) -> Any:
    """The input is decided and audited now (a denied input is 403 and never becomes a job);
    an allowed one is queued (202, ``Location``) and run by a worker, which decides the
    input again when it runs. 503 off PostgreSQL: jobs need its queue."""
    parsed = params_part(params, JobParams)
    data = await image_bytes(image, "image")
    service = service_of(request)
    return await run_in_threadpool(_submit, service, key, parsed, data, idempotency_key)


@router.get("/webhook-secret", responses=COMMON_ERRORS, summary="This tenant's webhook secret")
def get_webhook_secret(
    request: Request, key: Annotated[ApiKey, Depends(require(*WRITERS))]
) -> dict[str, str]:
    """The secret job webhooks to this tenant are signed with (HMAC-SHA256, ``Guard-Signature``
    header; see docs/service.md). It changes when the deployment's HMAC key is rotated."""
    hasher = service_of(request).guard.keys.hasher()
    return {"secret": webhook_secret(hasher, key.tenant), "algorithm": "HMAC-SHA256"}


@router.get("", responses={**COMMON_ERRORS, **NOT_FOUND}, summary="This tenant's jobs")
def list_jobs(
    request: Request,
    key: Annotated[ApiKey, Depends(require(*ALL_ROLES))],
    state: JobState | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    before: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    """Newest first, ``limit`` at a time; ``before`` (the last id of a page) for the next
    page, ``next`` in the answer when there may be one."""
    jobs = service_of(request).jobs.store.list_jobs(
        key.tenant, state=state, limit=limit, before=before
    )
    return {
        "jobs": [job_body(job) for job in jobs],
        "next": jobs[-1].id if len(jobs) == limit else None,
    }


@router.get("/{job_id}", responses={**COMMON_ERRORS, **NOT_FOUND}, summary="A job")
def get_job(
    request: Request, job_id: str, key: Annotated[ApiKey, Depends(require(*ALL_ROLES))]
) -> Any:
    return job_body(service_of(request).jobs.store.get(job_id, key.tenant))


@router.get(
    "/{job_id}/events",
    responses={**COMMON_ERRORS, **NOT_FOUND},
    summary="A job's progress as Server-Sent Events",
    response_class=EventSourceResponse,
)
async def job_events(
    request: Request, job_id: str, key: Annotated[ApiKey, Depends(require(*ALL_ROLES))]
) -> EventSourceResponse:
    """``event: job`` with the job (as ``GET /v1/jobs/{id}``) each time it changes, then
    ``event: end`` once it has finished; the stream closes after that."""
    store = service_of(request).jobs.store
    first = await run_in_threadpool(store.get, job_id, key.tenant)  # 404 before streaming

    async def events() -> AsyncIterator[ServerSentEvent]:
        job, seen = first, None
        while True:
            if job.updated_at != seen:
                seen = job.updated_at
                yield ServerSentEvent(json.dumps(job_body(job)), event="job", id=str(seen))
            if job.state.finished:
                yield ServerSentEvent(json.dumps({"state": job.state.value}), event="end")
                return
            await asyncio.sleep(EVENTS_POLL_S)
            job = await run_in_threadpool(store.get, job_id, key.tenant)

    return EventSourceResponse(events(), ping=15)


@router.get(
    "/{job_id}/result",
    responses={**COMMON_ERRORS, **NOT_FOUND, **CONFLICT, **GONE},
    summary="The stamped image of a succeeded job",
    response_class=Response,
)
def get_job_result(
    request: Request, job_id: str, key: Annotated[ApiKey, Depends(require(*WRITERS))]
) -> Response:
    job, data = service_of(request).jobs.store.result(job_id, key.tenant)
    headers = {"x-guard-output-sha256": job.result_sha256 or "", "cache-control": "no-store"}
    return Response(data, media_type=job.result_media_type, headers=headers)


@router.delete(
    "/{job_id}",
    status_code=202,
    responses={**COMMON_ERRORS, **NOT_FOUND, **CONFLICT},
    summary="Cancel a job",
)
def cancel_job(
    request: Request, job_id: str, key: Annotated[ApiKey, Depends(require(*WRITERS))]
) -> Any:
    """A queued job is cancelled at once; a running one stops at its next step or phase and
    releases nothing. A finished job is 409."""
    return job_body(service_of(request).jobs.store.request_cancel(job_id, key.tenant))
