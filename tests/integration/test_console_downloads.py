"""The console's streamed downloads cannot look complete when they are not, and its crafted
requests are typed 4xx pages with the page headers (the review's findings, as attacks)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from guard.api import create_app
from guard.api.keys import ApiKeyStore, Role
from guard.audit.search import AuditSearch
from guard.errors import Unavailable
from tests.support.guards import GuardFactory

pytestmark = pytest.mark.storage


@pytest.fixture
def console(make_guard: GuardFactory) -> Iterator[TestClient]:
    guard = make_guard()
    for n in range(450):
        guard.audit.append(
            {
                "v": 2,
                "kind": "decision",
                "time": f"2026-12-0{1 + n % 5}T10:00:00+00:00",
                "tenant": "acme",
                "requester": "r" * 64,
                "operation": "relight",
                "stage": "input",
                "decision_id": f"dec_{n:032x}",
                "verdict": "deny",
                "reason_codes": ["no_consent"],
                "policy": {"id": "default", "version": "1"},
            }
        )
    token = ApiKeyStore(guard.db).create(tenant="acme", role=Role.AUDITOR).token
    with TestClient(create_app(guard=guard), base_url="https://testserver") as client:
        page = client.get("/console/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        signed = client.post(
            "/console/sign-in", data={"key": token, "csrf": csrf.group(1)}, follow_redirects=False
        )
        assert signed.status_code == 303
        yield client


def _failing_after(calls: int) -> Any:
    original = AuditSearch.decisions

    def decisions(self: AuditSearch, *args: Any, **kwargs: Any) -> Any:
        decisions.calls += 1  # type: ignore[attr-defined]
        if decisions.calls > calls:  # type: ignore[attr-defined]
            raise Unavailable("the database stopped answering")
        return original(self, *args, **kwargs)

    decisions.calls = 0  # type: ignore[attr-defined]
    return decisions


def test_a_complete_csv_says_so(console: TestClient) -> None:
    lines = console.get("/console/decisions.csv").text.splitlines()
    assert len(lines) == 452 and lines[-1] == "# end of export: 450 decisions (complete)"


def test_a_csv_cut_by_a_dead_database_says_it_is_incomplete(
    console: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AuditSearch, "decisions", _failing_after(2))
    every = AuditSearch.every_decision
    monkeypatch.setattr(
        AuditSearch, "every_decision", lambda self, where: every(self, where, batch=100)
    )
    lines = console.get("/console/decisions.csv").text.splitlines()
    assert lines[-1].startswith("# INCOMPLETE: ")
    assert not any(line.startswith("# end of export") for line in lines)


def test_a_database_down_from_the_start_is_a_503_page_not_an_empty_file(
    console: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AuditSearch, "decisions", _failing_after(0))
    answer = console.get("/console/decisions.csv")
    assert answer.status_code == 503 and "text/html" in answer.headers["content-type"]
    assert "Content-Security-Policy" in answer.headers


def test_the_audit_export_ends_with_its_checkpoint(console: TestClient) -> None:
    answer = console.get("/console/export/audit.jsonl")
    lines = answer.text.splitlines()
    assert len(lines) == int(answer.headers["x-entry-count"]) + 1
    assert set(json.loads(lines[-1])) == {"latest_checkpoint"}


@pytest.mark.parametrize(
    "cursor", ["1.9223372036854775808", "99999999999999999999.1", "1.-5", "x", "1", "9" * 30 + ".1"]
)
def test_a_crafted_cursor_is_a_400_page(console: TestClient, cursor: str) -> None:
    answer = console.get("/console/decisions", params={"after": cursor})
    assert answer.status_code == 400 and "text/html" in answer.headers["content-type"]
    assert "Content-Security-Policy" in answer.headers


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/console/nope", 404),
        ("GET", "/console/subjects/..%2f..%2fetc", 404),
        ("DELETE", "/console/decisions", 405),
    ],
)
def test_every_console_answer_carries_the_page_headers(
    console: TestClient, method: str, path: str, status: int
) -> None:
    answer = console.request(method, path)
    assert answer.status_code == status
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert answer.headers["X-Frame-Options"] == "DENY"


def test_an_entry_of_a_shape_the_guard_never_writes_is_still_a_page(console: TestClient) -> None:
    """The log accepts any JSON object (a damaged or foreign entry): its decision page shows
    what it can, and nothing fails into a bare 500 without the page headers."""
    guard = console.app.state.service.guard  # type: ignore[attr-defined]
    guard.audit.append(
        {
            "kind": "decision",
            "time": "2026-12-05T10:00:00+05:00",
            "tenant": "acme",
            "decision_id": "dec_" + "e" * 32,
            "verdict": "deny",
            "reason_codes": [1, "no_consent"],
            "conditions": 5,
            "policy": "p",
            "rules": "none",
            "image": [float("inf"), 3],
            "faces": [{"box": "x"}],
            "requester": ["not", "a", "reference"],
        }
    )
    answer = console.get("/console/decisions/dec_" + "e" * 32)
    assert answer.status_code == 200, answer.text
    assert "Content-Security-Policy" in answer.headers
    assert "05:00 UTC" in answer.text  # 10:00 at +05:00, shown in UTC
    assert "does not record its rules" in answer.text
