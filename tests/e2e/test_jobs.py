"""Edit jobs end to end (issue 21): the service over uvicorn on PostgreSQL, workers as separate
processes (``guard worker``, or tests/support/job_worker.py whose editor takes its time in
reported steps), a real photo of a person who consented.

Submit → events → result that verifies; cancel mid-run; a worker killed mid-job (SIGKILL) →
the job runs again and the audit log holds exactly one release; webhooks signed, a replayed
one refused; another tenant's job is 404; a denied input never becomes a job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from sqlalchemy import func, select

from guard.jobs import WebhookRejected, WebhookReplayed, WebhookVerifier
from guard.jobs.records import EditJobRow
from tests.support.live import LiveFactory, LiveService, image_part, params
from tests.support.registry import EVIDENCE

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WORKER_STALLED_S = 2.0  # a killed worker is taken for dead after this (the setting's minimum)
Worker = Callable[..., subprocess.Popen[bytes]]


class _Receiver(BaseHTTPRequestHandler):
    """A tenant's webhook endpoint: keeps what it is sent."""

    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).received.append((dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    """The receiver's base URL (its origin is the one the service allows)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def service(live: LiveFactory, postgres_url: str, receiver: str) -> LiveService:
    return live(
        database_url=postgres_url,
        api_rate_burst=1_000_000,
        job_stalled_s=WORKER_STALLED_S,
        webhook_origins=[receiver],
    )


@pytest.fixture
def start_worker(service: LiveService, tmp_path: Path) -> Iterator[Worker]:
    """``start_worker(steps=..., step_s=...)``: a worker process on the service's database and
    keys; ``steps=None`` runs the real ``guard worker`` (classic editor)."""
    started: list[subprocess.Popen[bytes]] = []
    settings = service.guard.settings

    def start(steps: int | None = None, step_s: float = 0.2) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "GUARD_DATA_DIR": str(settings.data_dir),
            "GUARD_DATABASE_URL": settings.database_url,
            "GUARD_JOB_STALLED_S": str(WORKER_STALLED_S),
            "GUARD_WEBHOOK_ORIGINS": ",".join(settings.webhook_origins),
        }
        if steps is None:
            command = [str(Path(sys.executable).with_name("guard")), "worker"]
        else:
            command = [sys.executable, "-m", "tests.support.job_worker"]
            command += ["--steps", str(steps), "--step-s", str(step_s)]
        log = (tmp_path / f"worker-{len(started)}.log").open("wb")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _consenting_subject(api: httpx.Client) -> None:
    """The astronaut enrolled in tenant acme, granting acme/app relight and sketch."""
    subject = api.post("/v1/subjects", json={"display_name": "Eileen"}).json()["id"]
    enrolled = api.post(f"/v1/subjects/{subject}/faces", files=image_part())
    assert enrolled.status_code == 201, enrolled.text
    grant = api.post(
        "/v1/consents",
        json={"subject_id": subject, "scopes": ["relight"], "evidence_sha256": EVIDENCE},
    )
    assert grant.status_code == 201, grant.text


def _submit(api: httpx.Client, **extra: Any) -> dict[str, Any]:
    response = api.post("/v1/jobs", data=params(operation="relight", **extra), files=image_part())
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/jobs/{response.json()['job']['id']}"
    job: dict[str, Any] = response.json()["job"]
    assert job["state"] == "queued"
    return job


def _wait(
    api: httpx.Client, job_id: str, until: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = api.get(f"/v1/jobs/{job_id}").json()
        if until(job):
            return job
        assert time.monotonic() < deadline, f"job never got there: {job}"
        time.sleep(0.1)


def _kinds(service: LiveService, start: int) -> list[str]:
    log = service.guard.audit
    return [e["kind"] for _, e in log.entries(start=start, limit=log.size())]


def _releases(service: LiveService) -> list[dict[str, Any]]:
    log = service.guard.audit
    return [e for _, e in log.entries(limit=log.size()) if e["kind"] == "release"]


def test_submit_follow_the_events_fetch_a_result_that_verifies(
    service: LiveService, start_worker: Worker
) -> None:
    with service.client() as api:
        _consenting_subject(api)
        before = service.guard.audit.size()
        job = _submit(api)
        admitted = _kinds(service, before)
        assert admitted.count("decision") == 1  # the admitting decision, audited now
        start_worker()  # the real `guard worker`

        events: list[tuple[str, dict[str, Any]]] = []
        with api.stream("GET", f"/v1/jobs/{job['id']}/events", timeout=90) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            name = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((name, json.loads(line.removeprefix("data: "))))
        assert events[-1] == ("end", {"state": "succeeded"})
        states = [body["state"] for name, body in events if name == "job"]
        assert states[0] == "queued" and states[-1] == "succeeded"
        finished = events[-2][1]
        assert finished["outcome"]["decision"]["verdict"] == "allow_with_conditions"
        assert finished["attempt"] == 1

        result = api.get(f"/v1/jobs/{job['id']}/result")
        assert result.status_code == 200
        assert result.headers["x-guard-output-sha256"] == finished["result"]["sha256"]
        report = api.post("/v1/verify", files={"image": ("out.png", result.content, "image/png")})
        assert report.json()["outcome"] == "valid"
        decision_id = finished["outcome"]["decision"]["decision_id"]
        assert report.json()["decision"]["decision_id"] == decision_id
        releases = _releases(service)
        assert len(releases) == 1 and releases[0]["decision_id"] == decision_id
        # Its input is deleted once the job has run; the result is kept (encrypted) to expire.
        with service.guard.db.transaction() as session:
            row = session.get(EditJobRow, job["id"])
            assert row is not None and row.input_blob is None
            assert row.result_blob is not None and result.content not in row.result_blob


def test_cancel_a_running_job_releases_nothing(service: LiveService, start_worker: Worker) -> None:
    with service.client() as api:
        _consenting_subject(api)
        job = _submit(api)
        start_worker(steps=100, step_s=0.1)
        _wait(api, job["id"], lambda j: j["progress"]["done"] >= 3)
        cancelled = api.delete(f"/v1/jobs/{job['id']}")
        assert cancelled.status_code == 202 and cancelled.json()["cancel_requested"]
        ended = _wait(api, job["id"], lambda j: j["state"] == "cancelled", timeout=20)
        assert ended["progress"]["done"] < 100 and ended["result"] is None
        assert api.get(f"/v1/jobs/{job['id']}/result").status_code == 409
        assert api.delete(f"/v1/jobs/{job['id']}").status_code == 409  # finished already
        assert _releases(service) == []


def test_a_queued_job_is_cancelled_at_once(service: LiveService) -> None:
    with service.client() as api:
        _consenting_subject(api)
        job = _submit(api)
        cancelled = api.delete(f"/v1/jobs/{job['id']}")
        assert cancelled.status_code == 202 and cancelled.json()["state"] == "cancelled"


def test_a_worker_killed_mid_job_the_job_runs_again_with_one_release(
    service: LiveService, start_worker: Worker
) -> None:
    with service.client() as api:
        _consenting_subject(api)
        job = _submit(api)
        doomed = start_worker(steps=60, step_s=0.1)
        _wait(api, job["id"], lambda j: j["progress"]["done"] >= 3)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "running"

        start_worker(steps=3, step_s=0.05)
        ended = _wait(api, job["id"], lambda j: j["state"] == "succeeded", timeout=60)
        assert ended["attempt"] == 2
        releases = _releases(service)
        assert len(releases) == 1
        assert releases[0]["decision_id"] == ended["outcome"]["decision"]["decision_id"]


def test_webhooks_are_signed_and_a_replay_is_refused(
    receiver: str, service: LiveService, start_worker: Worker
) -> None:
    with service.client() as api:
        _consenting_subject(api)
        url = f"{receiver}/hooks/guard"
        job = _submit(api, webhook_url=url)
        start_worker()
        ended = _wait(api, job["id"], lambda j: (j["webhook"] or {}).get("state") == "delivered")
        assert ended["state"] == "succeeded"
        (headers, body) = _Receiver.received[0]

        secret = api.get("/v1/jobs/webhook-secret").json()["secret"]
        verifier = WebhookVerifier(secret)
        payload = verifier.verify(headers, body)
        assert payload["job"]["id"] == job["id"] and payload["job"]["state"] == "succeeded"
        with pytest.raises(WebhookReplayed):
            verifier.verify(headers, body)  # the same request again
        with pytest.raises(WebhookRejected, match="signature"):
            WebhookVerifier(secret).verify(headers, body.replace(b"succeeded", b"failed"))
        with pytest.raises(WebhookRejected, match="replay window"):
            WebhookVerifier(secret).verify(headers, body, now=time.time() + 3600)
        other_secret = service.client(tenant="globex").get("/v1/jobs/webhook-secret")
        with pytest.raises(WebhookRejected, match="signature"):
            WebhookVerifier(other_secret.json()["secret"]).verify(headers, body)

        # An origin the operator did not allow is refused before anything is decided.
        before = service.guard.audit.size()
        refused = api.post(
            "/v1/jobs",
            data=params(operation="relight", webhook_url="http://169.254.169.254/latest"),
            files=image_part(),
        )
        assert refused.status_code == 422 and refused.json()["code"] == "webhook_not_allowed"
        assert service.guard.audit.size() == before


def test_another_tenants_job_is_nobodys(service: LiveService) -> None:
    with service.client() as api, service.client(tenant="globex") as other:
        _consenting_subject(api)
        job = _submit(api)
        for path in (f"/v1/jobs/{job['id']}", "/v1/jobs/job_0123456789abcdef0123456789abcdef"):
            for response in (
                other.get(path),
                other.get(f"{path}/events"),
                other.get(f"{path}/result"),
                other.delete(path),
            ):
                assert response.status_code == 404, response.text
                assert response.json()["code"] == "not_found"
        assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "queued"  # left alone


def test_a_denied_input_never_becomes_a_job(service: LiveService) -> None:
    with service.client() as api:
        before = service.guard.audit.size()
        # The astronaut with no consent on record: denied now, audited, and no job.
        denied = api.post("/v1/jobs", data=params(operation="relight"), files=image_part())
        assert denied.status_code == 403 and denied.json()["code"] == "no_consent"
        assert _kinds(service, before).count("decision") == 1
        with service.guard.db.transaction() as session:
            assert session.scalar(select(func.count()).select_from(EditJobRow)) == 0


def test_jobs_need_postgresql(live: LiveFactory) -> None:
    service = live()  # SQLite
    with service.client() as api:
        before = service.guard.audit.size()
        response = api.post("/v1/jobs", data=params(operation="relight"), files=image_part())
        assert response.status_code == 503
        assert "GUARD_DATABASE_URL" in response.json()["detail"]
        assert service.guard.audit.size() == before


def test_a_tenant_lists_its_own_jobs_page_by_page(service: LiveService) -> None:
    with service.client() as api, service.client(tenant="globex") as other:
        _consenting_subject(api)
        ids = [_submit(api)["id"] for _ in range(3)]
        assert api.delete(f"/v1/jobs/{ids[0]}").status_code == 202
        first = api.get("/v1/jobs", params={"limit": 2}).json()
        assert [job["id"] for job in first["jobs"]] == ids[:0:-1] and first["next"] == ids[1]
        rest = api.get("/v1/jobs", params={"limit": 2, "before": first["next"]}).json()
        assert [job["id"] for job in rest["jobs"]] == [ids[0]] and rest["next"] is None
        cancelled = api.get("/v1/jobs", params={"state": "cancelled"}).json()["jobs"]
        assert [job["id"] for job in cancelled] == [ids[0]]
        assert other.get("/v1/jobs").json() == {"jobs": [], "next": None}
        assert other.get("/v1/jobs", params={"before": ids[1]}).status_code == 404
        assert api.get("/v1/jobs", params={"state": "lost"}).status_code == 422


def test_a_retried_submission_with_its_idempotency_key_finds_its_job(
    service: LiveService,
) -> None:
    with service.client() as api:
        _consenting_subject(api)
        key = {"Idempotency-Key": "9b2f6c1e-retry-1"}
        form = {"data": params(operation="relight"), "files": image_part()}
        first = api.post("/v1/jobs", headers=key, **form)
        assert first.status_code == 202 and first.json()["replayed"] is False
        before = service.guard.audit.size()
        again = api.post("/v1/jobs", headers=key, **form)  # the answer to the first was lost
        assert again.status_code == 202 and again.json()["replayed"] is True
        assert again.json()["job"]["id"] == first.json()["job"]["id"]
        assert service.guard.audit.size() == before  # not decided again
        other = api.post(
            "/v1/jobs", headers=key, data=params(operation="relight", prompt="warm"),
            files=image_part(),
        )  # fmt: skip
        assert other.status_code == 409 and "different request" in other.json()["detail"]
        bad = api.post("/v1/jobs", headers={"Idempotency-Key": "no spaces"}, **form)
        assert bad.status_code == 400
        assert service.guard.audit.size() == before
        assert len(api.get("/v1/jobs").json()["jobs"]) == 1
        # Keys are the tenant's own: another tenant's same key is another submission.
        with service.client(tenant="globex") as globex:
            theirs = globex.post("/v1/jobs", headers=key, **form)
            assert theirs.status_code == 403  # decided (no consent there), not replayed
