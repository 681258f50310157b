"""The rules that keep an edit job to one output, step by step (issue 21), on PostgreSQL:
a run that lost its claim releases nothing (its release rolls back with the refused write), a
job past its attempts fails saying so, a cancel reaches a running job, results expire, and a
webhook origin must be allowed. The processes and HTTP around them: tests/e2e/test_jobs.py."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from guard import EditRequest, Guard
from guard.editors import ClassicEditor
from guard.errors import UnprocessableInput
from guard.jobs import EditJobs, JobState, ResultGone
from guard.jobs.records import Claim, EditJobRow, JobSuperseded
from guard.jobs.webhooks import check_webhook_url
from guard.requests import Result
from guard.samples import sample_bytes
from tests.support.guards import GuardFactory

pytestmark = pytest.mark.postgres
REQUESTER = "acme/app"


@pytest.fixture
def guard(make_guard: GuardFactory, postgres_url: str) -> Guard:
    return make_guard(database_url=postgres_url)


def _request() -> EditRequest:
    # A picture without people: its input is allowed, so each run reaches its release.
    return EditRequest(image=sample_bytes("coffee"), operation="sketch", requester=REQUESTER)


def _submitted(jobs: EditJobs) -> str:
    submitted = jobs.submit(_request(), key_id="k1")
    assert submitted.job is not None and submitted.job.state is JobState.QUEUED
    return submitted.job.id


def _releases(guard: Guard) -> int:
    entries = guard.audit.entries(limit=guard.audit.size())
    return sum(entry["kind"] == "release" for _, entry in entries)


def _finish_as(jobs: EditJobs, claim: Claim) -> Callable[[Session, Result], None]:
    def finish(session: Session, result: Result) -> None:
        assert result.image is not None and result.provenance is not None
        stamped = result.provenance
        jobs.store.finish(
            session,
            claim,
            JobState.SUCCEEDED,
            outcome={"verdict": result.decision.verdict.value},
            result=(result.image, stamped.mime_type, stamped.sha256),
        )

    return finish


def _leases_end_at_once(jobs: EditJobs) -> None:
    """Every lease expires as it is given: each claim looks like one after a dead run's."""
    jobs.store.lease = timedelta(0)


def test_a_run_that_lost_its_claim_releases_nothing(guard: Guard) -> None:
    jobs = EditJobs(guard)
    job_id = _submitted(jobs)
    _leases_end_at_once(jobs)
    first = jobs.store.claim(job_id)
    # Its worker is taken for dead: the job is claimed again while the first run still works.
    second = jobs.store.claim(job_id)
    assert isinstance(first, Claim) and isinstance(second, Claim)
    assert (first.attempt, second.attempt) == (1, 2)

    with pytest.raises(JobSuperseded):
        guard.edit(_request(), finish=_finish_as(jobs, first))
    assert _releases(guard) == 0  # the release rolled back with the refused write

    result = guard.edit(_request(), finish=_finish_as(jobs, second))
    assert _releases(guard) == 1
    job, data = jobs.store.result(job_id, "acme")
    assert job.state is JobState.SUCCEEDED and job.attempt == 2
    assert data == result.image
    # ... and the first run can never finish it afterwards.
    with pytest.raises(JobSuperseded), guard.db.transaction() as session:
        jobs.store.finish(session, first, JobState.SUCCEEDED, outcome=None)


def test_a_live_run_keeps_its_job_and_a_run_given_back_is_no_attempt(guard: Guard) -> None:
    jobs = EditJobs(guard)
    job_id = _submitted(jobs)
    claim = jobs.store.claim(job_id)
    assert isinstance(claim, Claim) and claim.attempt == 1
    assert jobs.store.claim(job_id) is None  # a second delivery while the run's lease holds
    assert jobs.run(job_id) is None
    jobs.store.give_back(claim)  # the run met an unavailable database or key
    job = jobs.store.get(job_id, "acme")
    assert job.state is JobState.QUEUED and job.attempt == 0
    assert isinstance(jobs.store.claim(job_id), Claim)


def test_a_job_whose_workers_keep_dying_fails_saying_so(guard: Guard) -> None:
    jobs = EditJobs(guard)
    job_id = _submitted(jobs)
    _leases_end_at_once(jobs)
    for attempt in range(1, guard.settings.job_max_attempts + 1):
        claim = jobs.store.claim(job_id)
        assert isinstance(claim, Claim) and claim.attempt == attempt
    failed = jobs.store.claim(job_id)
    assert failed is not None and not isinstance(failed, Claim)
    assert failed.state is JobState.FAILED and "stopped during each of its 3 runs" in (
        failed.error or ""
    )
    with guard.db.transaction() as session:
        row = session.get(EditJobRow, job_id)
        assert row is not None and row.input_blob is None  # the input goes with the job's end
    assert jobs.run(job_id) == failed  # nothing left to run


def test_a_cancel_reaches_a_running_job_and_its_release(guard: Guard) -> None:
    jobs = EditJobs(guard)
    job_id = _submitted(jobs)
    claim = jobs.store.claim(job_id)
    assert isinstance(claim, Claim)
    assert jobs.store.report(claim, done=1, total=10) is False
    asked = jobs.store.request_cancel(job_id, "acme")
    assert asked.state is JobState.RUNNING and asked.cancel_requested
    assert jobs.store.report(claim, done=2, total=10) is True  # the run is told to stop
    with pytest.raises(JobSuperseded):  # and could not release if it went on regardless
        guard.edit(_request(), finish=_finish_as(jobs, claim))
    assert _releases(guard) == 0
    jobs.store.cancel_run(claim)
    assert jobs.store.get(job_id, "acme").state is JobState.CANCELLED


def test_a_run_through_the_service_and_its_result_expiring(guard: Guard) -> None:
    jobs = EditJobs(guard)
    job_id = _submitted(jobs)
    finished = jobs.run(job_id)
    assert finished is not None and finished.state is JobState.SUCCEEDED
    assert finished.attempt == 1 and finished.phase == "stamp" and _releases(guard) == 1
    assert finished.expires_at is not None
    assert jobs.store.purge_expired(datetime.now(UTC)) == 0  # not yet
    _expire(guard, job_id)
    with pytest.raises(ResultGone) as gone:  # at once, before any keeper deleted it
        jobs.store.result(job_id, "acme")
    assert gone.value.http_status == 410
    assert jobs.store.purge_expired() == 1
    purged = jobs.store.get(job_id, "acme")
    assert purged.state is JobState.SUCCEEDED and purged.outcome is None  # the record stays
    assert not purged.result_kept


def _expire(guard: Guard, job_id: str) -> None:
    with guard.db.transaction() as session:
        row = session.get(EditJobRow, job_id)
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)


def test_a_job_whose_run_died_or_whose_queue_entry_was_lost_is_queued_again(
    guard: Guard,
) -> None:
    jobs = EditJobs(guard)
    waiting = _submitted(jobs)
    assert jobs.requeue_lost() == []  # queued, with its entry waiting
    _leases_end_at_once(jobs)
    died = _submitted(jobs)
    assert isinstance(jobs.store.claim(died), Claim)  # its run's lease has run out
    with guard.db.transaction() as session:  # and every queue entry went (a failed queue)
        session.execute(text("DELETE FROM procrastinate_jobs"))
    assert sorted(jobs.requeue_lost()) == sorted([waiting, died])
    with guard.db.transaction() as session:
        entries = session.execute(
            text("SELECT queueing_lock FROM procrastinate_jobs WHERE status = 'todo'")
        ).scalars()
        assert sorted(entries) == sorted([waiting, died])
    assert jobs.requeue_lost() == []  # once


def test_a_job_whose_key_was_revoked_does_not_run(guard: Guard) -> None:
    jobs = EditJobs(guard, key_active=lambda key_id: False)
    job_id = _submitted(jobs)
    cancelled = jobs.run(job_id)
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    assert "was revoked" in (cancelled.error or "") and _releases(guard) == 0


def test_webhooks_go_only_to_allowed_origins() -> None:
    allowed = ["https://hooks.example.com", "http://127.0.0.1:8123"]
    for url, stored in (
        ("https://hooks.example.com/guard", "https://hooks.example.com/guard"),
        ("https://HOOKS.example.com:443/x?y=1", "https://hooks.example.com/x?y=1"),
        ("http://127.0.0.1:8123/hook", "http://127.0.0.1:8123/hook"),
    ):
        assert check_webhook_url(url, allowed) == stored  # as the sending client reads it
    for url, code in (
        ("http://hooks.example.com/guard", "webhook_not_allowed"),  # another scheme
        ("https://hooks.example.com:8443/", "webhook_not_allowed"),  # another port
        ("https://hooks.example.com.evil.test/", "webhook_not_allowed"),
        ("http://169.254.169.254/latest/meta-data", "webhook_not_allowed"),
        ("http://127.0.0.1:5432/", "webhook_not_allowed"),
        ("https://user:pw@hooks.example.com/", "invalid_webhook"),
        ("ftp://hooks.example.com/", "invalid_webhook"),
        ("/relative", "invalid_webhook"),
        ("https://[::1/", "invalid_webhook"),
        ("https://hooks.exa\tmple.com/x", "invalid_webhook"),
        ("https://hooks.example.com/\r\nX: y", "invalid_webhook"),
        (" https://hooks.example.com/", "invalid_webhook"),
    ):
        with pytest.raises(UnprocessableInput) as refused:
            check_webhook_url(url, allowed)
        assert refused.value.code == code, url
    with pytest.raises(UnprocessableInput, match="GUARD_WEBHOOK_ORIGINS"):
        check_webhook_url("https://hooks.example.com/", [])


class _BrokenEditor(ClassicEditor):
    """An editor with a bug: what a model's own error looks like to the worker."""

    def edit(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


def test_an_unexpected_error_fails_the_job_instead_of_leaving_it_running(guard: Guard) -> None:
    broken = Guard(guard.settings, face_engine=guard.face_engine, editor=_BrokenEditor())
    jobs = EditJobs(broken)
    job_id = _submitted(jobs)
    with pytest.raises(RuntimeError):  # the worker's queue sees it too (and does not retry it)
        jobs.run(job_id)
    failed = jobs.store.get(job_id, "acme")
    assert failed.state is JobState.FAILED
    assert failed.error == (
        "the edit stopped on an unexpected error (RuntimeError); nothing was released"
    )
    assert _releases(guard) == 0
    broken.close()


def test_two_submissions_with_one_idempotency_key_at_once_make_one_job(guard: Guard) -> None:
    jobs = EditJobs(guard)
    start = threading.Barrier(2)
    answers: list[str] = []

    def submit() -> None:
        start.wait()
        submitted = jobs.submit(_request(), key_id="k1", idempotency_key="same-moment")
        assert submitted.job is not None
        answers.append(submitted.job.id)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 2 and answers[0] == answers[1]
    assert len(jobs.store.list_jobs("acme")) == 1
    decisions = [e for _, e in guard.audit.entries(limit=100) if e["kind"] == "decision"]
    assert len(decisions) == 1  # the loser's decision rolled back with its job
