"""``guard worker``: run edit jobs (``POST /v1/jobs``) and their webhooks from the queue."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Literal

import typer

from guard.cli.common import errors, open_guard


def worker(
    concurrency: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Jobs this process runs at once. Edits are CPU- (or GPU-) bound: one per "
            "process, and more processes, is the usual choice (docs/deploy.md).",
        ),
    ] = 1,
    queue: Annotated[
        Literal["all", "edits", "webhooks"],
        typer.Option(help="Which tasks: edits, webhook deliveries, or both."),
    ] = "all",
) -> None:
    """Run edit jobs and webhook deliveries until SIGINT or SIGTERM (PostgreSQL only)."""
    from guard.api.keys import ApiKeyStore
    from guard.api.views import outcome_view
    from guard.jobs import EditJobs, run_worker
    from guard.jobs.worker import QUEUES

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with errors():
        guard = open_guard()
        keys = ApiKeyStore(guard.db)
        jobs = EditJobs(
            guard,
            view=outcome_view(lambda: guard.registry),
            key_active=lambda key_id: keys.active(key_id) is not None,
        )
        jobs.deferrer  # noqa: B018 - off PostgreSQL: the clear error, before anything starts
        typer.echo(
            f"guard worker: {concurrency} at once, queue {queue}, database {guard.db.safe_url}",
            err=True,
        )
        asyncio.run(run_worker(jobs, concurrency=concurrency, queues=QUEUES[queue]))
