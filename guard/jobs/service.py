"""``EditJobs``: submit an edit as a job, run one job, keep jobs from being lost, deliver
webhooks.

The API submits (:meth:`EditJobs.submit`): the edit is checked and its input decided and
audited exactly as ``/v1/edits`` does; an allowed input becomes a queued job (row and queue
entry) in the transaction of the audit entry that admitted it. The worker runs it
(:meth:`EditJobs.run`): the whole guarded edit again (the input is decided again when it runs,
so consent withdrawn while it waited is honoured), reporting phases and steps and renewing its
lease; the stamped result is stored in the same transaction as its release entry, and only if
this run still owns the job, so a job releases at most one output however often its workers
die. The keeper (:meth:`EditJobs.requeue_lost`) gives every unfinished job whose run died, or
whose queue entry went missing, a queue entry again.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import procrastinate
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from guard.audit import Receipt
from guard.errors import Conflict, GuardError, InvalidInput, Unavailable
from guard.identity import tenant_of
from guard.jobs.notify import deliver_webhook
from guard.jobs.queue import create_deferrer, create_queue_app, defer_edit, defer_webhook
from guard.jobs.records import (
    Claim,
    EditJobRow,
    Job,
    JobState,
    JobSuperseded,
    NewJob,
    new_job_id,
)
from guard.jobs.reporting import JobStopped, RunReporter
from guard.jobs.store import JobStore, over_limit
from guard.jobs.webhooks import check_webhook_url
from guard.pipeline import Guard
from guard.policy import Decision
from guard.requests import EditRequest, Result

OutcomeView = Callable[[Result, str], dict[str, Any]]
"""``view(result, tenant)``: the finished edit as that tenant may see it (the API's own body
for an edit, without the image): stored with the job when it ends."""

KeyActive = Callable[[str], bool]
"""``key_active(key_id)``: whether the API key that submitted a job is still valid."""


@dataclass(frozen=True)
class Submitted:
    """What :meth:`EditJobs.submit` ends with: the input decision and, if allowed, the job;
    for a replayed submission (its Idempotency-Key seen before) only the earlier job."""

    decision: Decision | None
    receipt: Receipt | None
    job: Job | None
    replayed: bool = False


IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")


def check_idempotency_key(key: str) -> None:
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidInput(
            "Idempotency-Key must be 1-200 letters, digits, '.', '_', ':' or '-' (a UUID is fine)"
        )


def _request_sha256(
    operation: str, asked: dict[str, Any], webhook_url: str | None, input_sha256: str
) -> str:
    described = {"operation": operation, **asked, "webhook_url": webhook_url, "image": input_sha256}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


class EditJobs:
    """Edit jobs of one guard (its database, keys and settings)."""

    def __init__(
        self,
        guard: Guard,
        *,
        view: OutcomeView | None = None,
        key_active: KeyActive | None = None,
    ) -> None:
        settings = guard.settings
        self.guard = guard
        self.settings = settings
        self.store = JobStore(
            guard.db,
            guard.keys.cipher,
            max_attempts=settings.job_max_attempts,
            result_retention=timedelta(hours=settings.job_result_hours),
            lease=timedelta(seconds=settings.job_stalled_s),
            on_finished=self._finished,
        )
        self._view = view
        self._key_active = key_active
        self._app: procrastinate.App | None = None
        self._deferrer: procrastinate.App | None = None

    @property
    def queue_app(self) -> procrastinate.App:
        """The worker's procrastinate app (:class:`Unavailable` naming GUARD_DATABASE_URL off
        PostgreSQL)."""
        if self._app is None:
            self._app = create_queue_app(self.settings.database_url)
        return self._app

    @property
    def deferrer(self) -> procrastinate.App:
        """The app that queues work in a caller's transaction (same error off PostgreSQL)."""
        if self._deferrer is None:
            self._deferrer = create_deferrer(self.settings.database_url)
        return self._deferrer

    # submitting ------------------------------------------------------------------------------

    def submit(
        self,
        request: EditRequest,
        *,
        key_id: str,
        webhook_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> Submitted:
        """Decide the input and, if allowed, queue the edit. Malformed edits and webhook URLs
        are refused before anything is decided; a tenant at its limit is 429 (before the gate,
        and again, authoritatively, in the admitting transaction, which it then rolls back).

        With ``idempotency_key``, a submission the tenant already made with that key is not
        decided again: its job comes back (``replayed``), or :class:`Conflict` when that key
        was used for a different request."""
        deferrer = self.deferrer  # off PostgreSQL: 503 before anything is decided
        tenant = tenant_of(request.requester)
        if webhook_url is not None:
            webhook_url = check_webhook_url(webhook_url, self.settings.webhook_origins)
        input_sha256 = hashlib.sha256(request.image).hexdigest()
        asked = {
            "prompt": request.prompt,
            "params": dict(request.params),
            "output_format": request.output_format,
        }
        fingerprint = _request_sha256(request.operation, asked, webhook_url, input_sha256)
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
            earlier = self._replay(tenant, idempotency_key, fingerprint)
            if earlier is not None:
                return earlier
        limit = self.settings.job_max_queued_per_tenant
        active = self.store.active(tenant)
        if active >= limit:
            raise over_limit(tenant, active, limit)
        job_id = new_job_id()
        new = NewJob(
            tenant=tenant,
            requester=request.requester,
            key_id=key_id,
            operation=request.operation,
            request=asked,
            sealed_image=self.store.seal(request.image),
            input_sha256=input_sha256,
            webhook_url=webhook_url,
            idempotency_key=idempotency_key,
            request_sha256=fingerprint,
        )
        created: list[Job] = []

        def enqueue(session: Session, decision: Decision, receipt: Receipt) -> None:
            created.append(
                self.store.create(
                    session,
                    new,
                    job_id=job_id,
                    decision_id=decision.decision_id,
                    leaf=receipt.leaf_index,
                    limit=limit,
                )
            )
            defer_edit(deferrer, session, job_id)

        try:
            decision, receipt = self.guard.admit_edit(request, enqueue=enqueue)
        except IntegrityError as exc:
            # The same key submitted at the same moment: the other submission's job stands
            # (this one's decision rolled back with its job, as if never asked).
            earlier = (
                self._replay(tenant, idempotency_key, fingerprint) if idempotency_key else None
            )
            if earlier is None:
                raise Unavailable(f"the job could not be written: {exc.orig}") from exc
            return earlier
        return Submitted(decision, receipt, created[0] if created else None)

    def _replay(self, tenant: str, idempotency_key: str, fingerprint: str) -> Submitted | None:
        found = self.store.submitted_as(tenant, idempotency_key)
        if found is None:
            return None
        job, asked = found
        if asked != fingerprint:
            raise Conflict(
                f"Idempotency-Key {idempotency_key!r} was used for a different request (job "
                f"{job.id}); use a new key for a new request"
            )
        return Submitted(None, None, job, replayed=True)

    # running ---------------------------------------------------------------------------------

    def run(self, job_id: str) -> Job | None:
        """Run one job to its end (worker side). Returns the finished job, or ``None`` when
        this run was stopped, superseded, or another live run owns the job. Raises
        :class:`Unavailable` (the queue tries again later) when the database or a key is
        gone; the job is given back, not failed."""
        claimed = self.store.claim(job_id)
        if not isinstance(claimed, Claim):
            return claimed  # finished, cancelled, out of attempts, or running elsewhere
        claim = claimed
        if self._key_active is not None and not self._key_active(claim.key_id):
            error = f"the API key {claim.key_id} that submitted it was revoked before it ran"
            return self._end(claim, JobState.CANCELLED, outcome=None, error=error)
        with RunReporter(self.store, claim) as reporter:
            return self._run_claimed(claim, reporter)

    def _run_claimed(self, claim: Claim, reporter: RunReporter) -> Job | None:
        view = self._outcome_view(tenant_of(claim.requester))

        def finish(session: Session, result: Result) -> None:
            assert result.image is not None and result.provenance is not None
            self.store.finish(
                session,
                claim,
                JobState.SUCCEEDED,
                outcome=view(result),
                result=(result.image, result.provenance.mime_type, result.provenance.sha256),
            )

        request = EditRequest(
            image=claim.image,
            operation=claim.operation,
            requester=claim.requester,
            prompt=str(claim.request.get("prompt", "")),
            params=dict(claim.request.get("params", {})),
            output_format=claim.request.get("output_format", "png"),
        )
        settled = False  # the run ended the job, let it go, or gave it back to the queue
        try:
            result = self.guard.edit(
                request, progress=reporter.progress, phase=reporter.phase, finish=finish
            )
            settled = True
        except (JobStopped, JobSuperseded):
            settled = True
            self.store.cancel_run(claim)
            return None
        except Unavailable:
            settled = True
            self.store.give_back(claim)
            raise  # the queue tries again (the database or a key may be back)
        except GuardError as exc:
            settled = True
            return self._end(claim, JobState.FAILED, outcome=None, error=exc.message)
        finally:
            if not settled:
                # Anything else (a bug, the model's own error): the job fails now rather than
                # staying "running"; no release happened (it would have settled it).
                failure = type(sys.exc_info()[1]).__name__
                error = f"the edit stopped on an unexpected error ({failure}); nothing was released"
                self._end(claim, JobState.FAILED, outcome=None, error=error)
        if result.image is None:
            return self._end(claim, JobState.DENIED, outcome=view(result), error=None)
        return self.store.get(claim.job_id, tenant_of(claim.requester))

    def _outcome_view(self, tenant: str) -> Callable[[Result], dict[str, Any]]:
        view = self._view
        if view is None:
            return lambda result: {"verdict": result.decision.verdict.value}
        return lambda result: view(result, tenant)

    def _end(
        self, claim: Claim, state: JobState, *, outcome: dict[str, Any] | None, error: str | None
    ) -> Job | None:
        try:
            with self.guard.db.transaction() as session:
                row = self.store.finish(session, claim, state, outcome=outcome, error=error)
                return Job.of(row)
        except JobSuperseded:
            return None

    def _finished(self, session: Session, row: EditJobRow) -> None:
        """Every job that ends with a webhook to send has it queued in the same transaction."""
        if row.webhook_url is not None:
            defer_webhook(self.deferrer, session, row.id)

    # keeping ---------------------------------------------------------------------------------

    def requeue_lost(self) -> list[str]:
        """Give a queue entry to every unfinished job whose run died (its lease expired) or
        that has waited a whole lease with none waiting for it (a queue entry that failed or
        was lost). A job with a queue entry waiting is left alone; a duplicate entry would be
        harmless anyway (:meth:`JobStore.claim` lets one live run own a job). Returns the ids."""
        requeued = []
        for job_id in self.store.lost(idle=self.store.lease):
            with self.guard.db.transaction() as session:
                waiting = session.scalar(
                    # procrastinate's own table (its schema is pinned by migration 0013): the
                    # queueing lock of a waiting entry is the job's id.
                    text(
                        "SELECT count(*) FROM procrastinate_jobs "
                        "WHERE queueing_lock = :job_id AND status = 'todo'"
                    ),
                    {"job_id": job_id},
                )
                if not waiting:
                    defer_edit(self.deferrer, session, job_id)
                    requeued.append(job_id)
        return requeued

    async def deliver_webhook(self, job_id: str, *, last: bool) -> bool:
        """One try at the finished job's webhook (:func:`guard.jobs.notify.deliver_webhook`)."""
        return await deliver_webhook(
            self.store, self.guard.keys.hasher, self.settings, job_id, last=last
        )
