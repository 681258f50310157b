"""`guard serve --workers 2` as operators run it: a real supervisor with two worker processes
sharing Redis limits, and /metrics adding up both workers when PROMETHEUS_MULTIPROC_DIR is set."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from guard.api import ApiKeyStore, Role
from guard.bootstrap import initialise
from guard.config import Settings
from guard.db import Database
from guard.faces import FaceEngine


@pytest.mark.slow
def test_two_workers_serve_and_metrics_add_up(
    tmp_path: Path, face_engine: FaceEngine, redis_url: str
) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    initialise(settings, face_engine)
    token = ApiKeyStore(Database(settings.database_url)).create(tenant="acme", role=Role.ADMIN)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "GUARD_DATA_DIR": str(settings.data_dir),
        "GUARD_REDIS_URL": redis_url,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    guard_command = str(Path(sys.executable).with_name("guard"))
    server = subprocess.Popen(
        [guard_command, "serve", "--workers", "2", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "guard serve --workers 2 did not become ready"
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {token.token}"}
        # A new connection each, spread by the kernel over the workers; whichever worker
        # answers /metrics must report all 20 (it reads every worker's file).
        for _ in range(20):
            assert httpx.get(f"{base}/v1/subjects", headers=headers).status_code == 200
        ready = httpx.get(f"{base}/readyz").json()
        assert ready["checks"]["rate_limits"] == "ok (redis)"
        metrics = httpx.get(f"{base}/metrics").text
        assert 'guard_http_requests_total{method="GET",route="/v1/subjects",status="200"} 20.0' in (
            metrics
        )
        assert len(list(metrics_dir.glob("counter_*.db"))) == 2, "both workers started"
    finally:
        server.terminate()
        server.wait(timeout=30)
