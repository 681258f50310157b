"""``guard worker``: runs edit jobs and webhook deliveries from the queue.

Each worker process registers the two tasks with procrastinate and runs its worker loop (a
heartbeat every quarter of ``GUARD_JOB_STALLED_S``), beside a keeper that, every half of it:

- finds jobs whose worker's heartbeat is older than ``GUARD_JOB_STALLED_S`` (killed, lost) and
  queues them again: the next run claims the job with the next attempt, and a job past
  ``GUARD_JOB_MAX_ATTEMPTS`` runs is failed, saying so (never lost, never run to a second
  output: see :mod:`guard.jobs.store`);
- deletes stored results past their retention.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import procrastinate
from procrastinate import JobContext, RetryStrategy

from guard.errors import Unavailable
from guard.jobs.queue import EDIT_QUEUE, EDIT_TASK, WEBHOOK_QUEUE, WEBHOOK_TASK
from guard.jobs.service import EditJobs, WorkerStopping

log = logging.getLogger("guard.jobs.worker")

QUEUES = {"edits": (EDIT_QUEUE,), "webhooks": (WEBHOOK_QUEUE,), "all": (EDIT_QUEUE, WEBHOOK_QUEUE)}


def register_tasks(jobs: EditJobs) -> procrastinate.App:
    """The queue app with this guard's two tasks registered."""
    app = jobs.queue_app
    settings = jobs.settings

    # An Unavailable run (database or key gone) and a shutdown are queued again; the job's own
    # attempt count (JobStore.claim) is what fails a job that keeps stopping.
    @app.task(
        name=EDIT_TASK,
        queue=EDIT_QUEUE,
        pass_context=True,
        retry=RetryStrategy(
            max_attempts=settings.job_max_attempts + 1,
            wait=2,
            retry_exceptions=[Unavailable, WorkerStopping],
        ),
    )
    def run_edit_job(context: JobContext, job_id: str) -> None:
        jobs.run(job_id, stopping=context.should_abort)

    @app.task(
        name=WEBHOOK_TASK,
        queue=WEBHOOK_QUEUE,
        pass_context=True,
        retry=RetryStrategy(
            max_attempts=settings.webhook_attempts,
            exponential_wait=2,
            retry_exceptions=[Unavailable],
        ),
    )
    def deliver_job_webhook(context: JobContext, job_id: str) -> None:
        attempts = context.job.attempts + 1
        jobs.deliver_webhook(job_id, last=attempts >= settings.webhook_attempts)

    del run_edit_job, deliver_job_webhook  # registered with the app
    return app


async def keep_jobs(jobs: EditJobs) -> None:
    """Requeue stalled jobs and purge expired results, forever (cancelled with the worker)."""
    app = jobs.queue_app
    stalled_s = jobs.settings.job_stalled_s
    while True:
        try:
            for stalled in await app.job_manager.get_stalled_jobs(
                seconds_since_heartbeat=stalled_s
            ):
                log.warning("job %s: its worker stopped; queued again", stalled.task_kwargs)
                await app.job_manager.retry_job(stalled)
            await app.job_manager.prune_stalled_workers(stalled_s)
            purged = await asyncio.to_thread(jobs.store.purge_expired)
            if purged:
                log.info("deleted %d job results past their retention", purged)
        except (OSError, Unavailable, procrastinate.exceptions.ProcrastinateException) as exc:
            log.warning("job keeper: %s; trying again", exc)
        await asyncio.sleep(stalled_s / 2)


async def run_worker(
    jobs: EditJobs,
    *,
    concurrency: int = 1,
    queues: Sequence[str] = QUEUES["all"],
    signals: bool = True,
) -> None:
    """Run procrastinate's worker (edits and/or webhooks) and the keeper until SIGINT/SIGTERM
    (``signals``; else until cancelled: a worker in a thread of another program)."""
    app = register_tasks(jobs)
    stalled_s = jobs.settings.job_stalled_s
    async with app.open_async():
        keeper = asyncio.create_task(keep_jobs(jobs), name="guard job keeper")
        try:
            await app.run_worker_async(
                queues=list(queues),
                concurrency=concurrency,
                update_heartbeat_interval=stalled_s / 4,
                stalled_worker_timeout=stalled_s,
                install_signal_handlers=signals,
            )
        finally:
            keeper.cancel()
