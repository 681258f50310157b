"""schemathesis against the live OpenAPI schema: no 5xx, documented statuses and content
types, responses that match their schemas. A bounded run (fixed seed); bench/service.py
--fuzz runs a longer one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from guard.api import Role
from tests.support.live import LiveFactory

CHECKS = ",".join(
    [
        "not_a_server_error",
        "response_schema_conformance",
        "status_code_conformance",
        "content_type_conformance",
    ]
)


def run_schemathesis(base_url: str, token: str, *, examples: int, seed: int = 1) -> str:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--header",
        f"x-guard-api-key: {token}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(examples),
        "--phases",
        "examples,fuzzing",
        "--seed",
        str(seed),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"


def test_no_server_errors_and_responses_match_the_schema(live: LiveFactory) -> None:
    service = live(api_rate_burst=1_000_000)
    output = run_schemathesis(service.base_url, service.token("acme", Role.ADMIN), examples=10)
    assert output.startswith("exit 0"), output[-6000:]
