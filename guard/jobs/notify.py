"""Delivering a finished job's webhook: one try, recorded on the job (the queue retries a
:class:`WebhookNotDelivered` with backoff)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from guard.config import Settings
from guard.db import Database
from guard.errors import Unavailable
from guard.jobs.records import EditJobRow, Job
from guard.jobs.store import JobStore
from guard.jobs.webhooks import WebhookNotAllowed, deliver, signed_delivery, webhook_secret
from guard.secrets import KeyedHasher


class WebhookNotDelivered(Unavailable):
    """The receiver did not answer 2xx in time: the delivery is tried again later."""


def webhook_job(job: Job) -> dict[str, Any]:
    """What a webhook says about a job (no image; the tenant's own view of its decisions)."""
    decision = (job.outcome or {}).get("decision")
    return {
        "id": job.id,
        "state": job.state.value,
        "operation": job.operation,
        "error": job.error,
        "decision": decision,
        "result_sha256": job.result_sha256,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def webhook_target(db: Database, job_id: str) -> tuple[Job, str] | None:
    """The finished job and its webhook URL, if it has one still to deliver."""
    with db.transaction() as session:
        row = session.get(EditJobRow, job_id)
        if row is None or row.webhook_url is None or row.webhook_state != "pending":
            return None
        return Job.of(row), row.webhook_url


def webhook_tried(db: Database, job_id: str, *, delivered: bool, last: bool) -> None:
    state = "delivered" if delivered else ("failed" if last else "pending")
    with db.transaction() as session:
        row = session.get(EditJobRow, job_id, with_for_update=True)
        if row is not None:
            row.webhook_attempts += 1
            row.webhook_state = state


async def deliver_webhook(
    store: JobStore,
    hasher: Callable[[], KeyedHasher],
    settings: Settings,
    job_id: str,
    *,
    last: bool,
) -> bool:
    """POST the finished job's webhook once; :class:`WebhookNotDelivered` to be tried again
    (``last``: the final try, recorded as failed). Returns whether it was sent; a URL the
    allow-list no longer admits, or whose name resolves to a non-public address, is recorded
    as failed and not tried again."""
    db = store.db
    target = await asyncio.to_thread(webhook_target, db, job_id)
    if target is None:
        return False
    job, url = target
    secret = webhook_secret(hasher(), job.tenant)
    delivery = signed_delivery(url, secret, f"dlv_{job.id}", {"job": webhook_job(job)})
    try:
        status, detail = await deliver(
            delivery, settings.webhook_origins, timeout_s=settings.webhook_timeout_s
        )
    except WebhookNotAllowed:
        await asyncio.to_thread(webhook_tried, db, job_id, delivered=False, last=True)
        return False
    delivered = 200 <= status < 300
    await asyncio.to_thread(webhook_tried, db, job_id, delivered=delivered, last=last)
    if not delivered:
        raise WebhookNotDelivered(f"the webhook of job {job_id} was not delivered: {detail}")
    return True
