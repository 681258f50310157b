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
from guard.jobs.service import EditJobs

log = logging.getLogger("guard.jobs.worker")

QUEUES = {"edits": (EDIT_QUEUE,), "webhooks": (WEBHOOK_QUEUE,), "all": (EDIT_QUEUE, WEBHOOK_QUEUE)}


def register_tasks(jobs: EditJobs) -> procrastinate.App:
    """The queue app with this guard's two tasks registered."""
    app = jobs.queue_app
    settings = jobs.settings

    # Unavailable (the database or a key gone) gives the job back and is tried again, without
    # end: the job waits for what it needs rather than failing while an operator fixes it.
    @app.task(
        name=EDIT_TASK,
        queue=EDIT_QUEUE,
        retry=RetryStrategy(wait=5, retry_exceptions=[Unavailable]),
    )
    def run_edit_job(job_id: str) -> None:
        jobs.run(job_id)

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
    async def deliver_job_webhook(context: JobContext, job_id: str) -> None:
        attempts = context.job.attempts + 1
        await jobs.deliver_webhook(job_id, last=attempts >= settings.webhook_attempts)

    del run_edit_job, deliver_job_webhook  # registered with the app
    return app


async def keep_jobs(jobs: EditJobs) -> None:
    """Every half of ``GUARD_JOB_STALLED_S``, for ever: queue again the jobs of workers that
    stopped sending heartbeats, give a queue entry to every unfinished job whose run died or
    whose entry was lost, purge expired results. A fault of the database is logged and tried
    again; anything else ends the worker (run_worker), rather than leaving it without a keeper."""
    app = jobs.queue_app
    stalled_s = jobs.settings.job_stalled_s
    while True:
        try:
            for stalled in await app.job_manager.get_stalled_jobs(
                seconds_since_heartbeat=stalled_s
            ):
                # Its run is claimed again only if its lease ran out too (JobStore.claim).
                await app.job_manager.retry_job(stalled)
            await app.job_manager.prune_stalled_workers(stalled_s)
            for job_id in await asyncio.to_thread(jobs.requeue_lost):
                log.warning(
                    "job %s: its run stopped or its queue entry was lost; queued again", job_id
                )
            purged = await asyncio.to_thread(jobs.store.purge_expired)
            if purged:
                log.info("deleted the results of %d jobs past their retention", purged)
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
    (``signals``; else until cancelled: a worker in a thread of another program). A worker
    finishes the job it is running before it stops; its lease, renewed meanwhile, keeps any
    other worker from running that job again."""
    app = register_tasks(jobs)
    stalled_s = jobs.settings.job_stalled_s
    async with app.open_async():
        worker = asyncio.create_task(
            app.run_worker_async(
                queues=list(queues),
                concurrency=concurrency,
                update_heartbeat_interval=stalled_s / 4,
                stalled_worker_timeout=stalled_s,
                install_signal_handlers=signals,
            ),
            name="guard worker",
        )
        keeper = asyncio.create_task(keep_jobs(jobs), name="guard job keeper")
        try:
            await asyncio.wait({worker, keeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (keeper, worker):
                task.cancel()
            results = await asyncio.gather(worker, keeper, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
