"""Two hosts, one PostgreSQL: two `guard serve` processes with their own data folders and the
same keys (as mounted secrets would give them) enforce each other's changes. A public figure
added on host A is denied on host B within GUARD_BLOCKLIST_POLL_S; two blocklist edits made at
once from the same generation never both save (one 201, one 409); consent revoked on A denies on
B at B's next request."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from guard.api import ApiKeyStore, Role
from guard.bootstrap import initialise
from guard.config import Settings
from guard.db import Database
from guard.faces import FaceEngine
from guard.samples import sample_bytes
from tests.support.live import image_part, params
from tests.support.registry import EVIDENCE

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

POLL_S = 1.0
MARGIN_S = 2.0  # a request in flight, a loaded machine: what "within poll_s" is allowed on top
HANKS = ("hanks.png", sample_bytes("tom_hanks"), "image/png")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(data_dir: Path, database_url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GUARD_")},
        "GUARD_DATA_DIR": str(data_dir),
        "GUARD_DATABASE_URL": database_url,
        "GUARD_BLOCKLIST_POLL_S": str(POLL_S),
    }
    guard_command = str(Path(sys.executable).with_name("guard"))
    with log.open("wb") as output:
        process = subprocess.Popen(
            [guard_command, "serve", "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return process, f"http://127.0.0.1:{port}"


def _wait_until_up(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    """Until the host is ready: its schema, keys, policy and the shared blocklist all read."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert process.poll() is None, f"host exited: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"host did not start: {log.read_text()[-2000:]}"
        time.sleep(0.1)


@pytest.fixture
def hosts(
    tmp_path: Path, postgres_url: str, face_engine: FaceEngine
) -> Iterator[tuple[str, str, dict[str, str]]]:
    """Host A and host B (base URLs) and the keys: operator, integrator of tenant acme."""
    a_dir, b_dir = tmp_path / "host-a", tmp_path / "host-b"
    initialise(Settings(data_dir=a_dir, database_url=postgres_url), face_engine)
    shutil.copytree(a_dir / "keys", b_dir / "keys")  # the same secrets mounted on every host
    db = Database(postgres_url)
    keys = ApiKeyStore(db)
    tokens = {
        "operator": keys.create(tenant=None, role=Role.OPERATOR).token,
        "integrator": keys.create(tenant="acme", role=Role.INTEGRATOR, requester="acme/app").token,
    }
    db.dispose()
    started = [_start(d, postgres_url, tmp_path / f"{d.name}.log") for d in (a_dir, b_dir)]
    try:
        for (process, base), d in zip(started, (a_dir, b_dir), strict=True):
            _wait_until_up(process, base, tmp_path / f"{d.name}.log")
        yield started[0][1], started[1][1], tokens
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            process.wait(timeout=30)


def _client(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _add(api: httpx.Client, figure_id: str, if_match: str | None = None) -> httpx.Response:
    figure = {"figure_id": figure_id, "name": figure_id.replace("-", " ").title()}
    return api.post(
        "/v1/blocklist/figures",
        data={"params": json.dumps(figure)},
        files={"images": HANKS},
        headers={"If-Match": if_match} if if_match else {},
    )


def test_hosts_enforce_each_others_changes(hosts: tuple[str, str, dict[str, str]]) -> None:
    a, b, tokens = hosts
    with (
        _client(a, tokens["operator"]) as operator_a,
        _client(b, tokens["operator"]) as operator_b,
        _client(a, tokens["integrator"]) as api_a,
        _client(b, tokens["integrator"]) as api_b,
    ):

        def check() -> httpx.Response:
            return api_b.post(
                "/v1/checks", data=params(operation="relight"), files={"image": HANKS}
            )

        first = check()  # B has read the empty blocklist
        assert first.status_code == 403 and first.json()["code"] == "no_consent", first.text

        # (a) A public figure added on A is denied on B within poll_s.
        added = _add(operator_a, "tom-hanks")
        assert added.status_code == 201, added.text
        saved_at, generation = time.monotonic(), added.headers["ETag"]
        while True:
            on_b = check()
            waited = time.monotonic() - saved_at
            if on_b.json().get("code") != "no_consent" or waited > POLL_S + MARGIN_S:
                break
            time.sleep(0.1)
        assert on_b.status_code == 403 and on_b.json()["code"] == "public_figure", on_b.text
        assert waited <= POLL_S + MARGIN_S
        assert operator_b.get("/v1/blocklist").headers["ETag"] == generation

        # (b) Two edits from the same generation, one on each host at once: one saves.
        answers: dict[str, httpx.Response] = {}
        go = threading.Barrier(2, timeout=30)

        def edit(name: str, api: httpx.Client) -> None:
            go.wait()
            answers[name] = _add(api, f"double-{name}", if_match=generation)

        threads = [
            threading.Thread(target=edit, args=(name, api))
            for name, api in (("a", operator_a), ("b", operator_b))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        statuses = sorted(response.status_code for response in answers.values())
        assert statuses == [201, 409], {k: v.text for k, v in answers.items()}
        refused = next(r for r in answers.values() if r.status_code == 409)
        assert (
            refused.json()["code"] == "conflict" and "nothing was saved" in refused.json()["detail"]
        )
        listed = operator_a.get("/v1/blocklist").json()
        assert len(listed["figures"]) == 2 and listed["generation"] == int(generation[1:-1]) + 1
        malformed = _add(operator_b, "double-c", if_match="12")
        assert malformed.status_code == 400, malformed.text

        # (c) Consent revoked on A denies on B at B's next request.
        subject = api_a.post("/v1/subjects", json={"display_name": "Eileen"}).json()["id"]
        enrolled = api_a.post(f"/v1/subjects/{subject}/faces", files=image_part())
        assert enrolled.status_code == 201, enrolled.text
        grant = api_a.post(
            "/v1/consents",
            json={"subject_id": subject, "scopes": ["relight"], "evidence_sha256": EVIDENCE},
        )
        assert grant.status_code == 201, grant.text
        allowed = api_b.post("/v1/checks", data=params(operation="relight"), files=image_part())
        assert allowed.status_code == 200, allowed.text
        revoked = api_a.post(f"/v1/consents/{grant.json()['id']}/revoke")
        assert revoked.json()["status"] == "revoked"
        denied = api_b.post("/v1/checks", data=params(operation="relight"), files=image_part())
        assert denied.status_code == 403 and denied.json()["code"] == "consent_revoked"
