"""The queue the jobs run from: procrastinate, on the guard's own PostgreSQL database.

Why procrastinate (docs/service.md, "Edit jobs"): the guard's state already lives in
PostgreSQL, so a queue there adds no second system to run, back up or secure, and a job is
enqueued **in the same transaction** as the audit entry of the decision that admitted it (an
admitted edit is never lost; a denied one never becomes a job). Workers send heartbeats; a job
whose worker stopped is found by :func:`stalled_jobs` and run again (guard/jobs/worker.py).

Jobs are deferred by task name through the caller's connection (:func:`create_deferrer`), in
the API and in the worker alike; the tasks themselves are registered with the worker's own app
(:mod:`guard.jobs.worker`).
"""

from __future__ import annotations

from typing import Any

import procrastinate
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from guard.errors import Unavailable

EDIT_QUEUE = "guard-edits"
WEBHOOK_QUEUE = "guard-webhooks"
EDIT_TASK = "guard.run_edit_job"
WEBHOOK_TASK = "guard.deliver_job_webhook"


def libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL as a libpq connection string (what psycopg's pool takes)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise Unavailable(
            "edit jobs need PostgreSQL (their queue lives there): set GUARD_DATABASE_URL to a "
            "postgresql:// URL; this deployment uses "
            f"{url.get_backend_name()}, where only /v1/edits (in the request) is available"
        )
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def create_queue_app(database_url: str) -> procrastinate.App:
    """The worker's procrastinate app on the guard's database (asynchronous; connected when
    the worker opens it)."""
    connector = procrastinate.PsycopgConnector(conninfo=libpq_url(database_url))
    return procrastinate.App(connector=connector)


def create_deferrer(database_url: str) -> procrastinate.App:
    """The app jobs are deferred with: synchronous and never opened, it only ever writes
    through the caller's connection (an opened asynchronous app cannot use a sync one)."""
    connector = procrastinate.SyncPsycopgConnector(conninfo=libpq_url(database_url))
    return procrastinate.App(connector=connector)


def _driver_connection(session: Session) -> Any:
    """The psycopg connection under ``session``'s transaction."""
    return session.connection().connection.driver_connection


def defer_edit(app: procrastinate.App, session: Session, job_id: str) -> None:
    """Enqueue a run of ``job_id`` in ``session``'s transaction (commits or rolls back with
    it). The queueing lock keeps one queued run per job."""
    app.configure_task(
        EDIT_TASK,
        queue=EDIT_QUEUE,
        queueing_lock=job_id,
        connection=_driver_connection(session),
    ).defer(job_id=job_id)


def defer_webhook(app: procrastinate.App, session: Session, job_id: str) -> None:
    """Enqueue the delivery of ``job_id``'s webhook in ``session``'s transaction (the one that
    finished the job)."""
    app.configure_task(
        WEBHOOK_TASK, queue=WEBHOOK_QUEUE, connection=_driver_connection(session)
    ).defer(job_id=job_id)
