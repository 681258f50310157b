"""Long edits as jobs on a queue (procrastinate, on the guard's PostgreSQL database).

    >>> jobs = EditJobs(guard)                                           # doctest: +SKIP
    >>> submitted = jobs.submit(request, key_id="k1")   # input decided and audited now
    >>> submitted.job.state                                              # doctest: +SKIP
    <JobState.QUEUED: 'queued'>

``guard worker`` runs them (:func:`run_worker`); the HTTP surface is ``/v1/jobs``
(docs/service.md, "Edit jobs"). Receivers of job webhooks check them with
:class:`WebhookVerifier`.
"""

from guard.jobs.records import Job, JobState, ResultGone
from guard.jobs.service import EditJobs, OutcomeView, Submitted
from guard.jobs.store import JobStore
from guard.jobs.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    WebhookRejected,
    WebhookReplayed,
    WebhookVerifier,
    webhook_secret,
)
from guard.jobs.worker import run_worker

__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "EditJobs",
    "Job",
    "JobState",
    "JobStore",
    "OutcomeView",
    "ResultGone",
    "Submitted",
    "WebhookRejected",
    "WebhookReplayed",
    "WebhookVerifier",
    "run_worker",
    "webhook_secret",
]
