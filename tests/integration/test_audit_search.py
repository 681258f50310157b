"""The audit log's search index on SQLite and PostgreSQL: every append indexes its entry in
the same transaction, filters select exactly what the entries say, keyset pages cover every
decision once, and a tenant's questions never return another tenant's rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from guard.audit.checkpoint import PRIVATE_KEY_FILE, create_checkpoint_key, load_checkpoint_signer
from guard.audit.index import AuditIndexRow, index_rows
from guard.audit.log import AuditLog
from guard.audit.search import AuditSearch, Cursor, DecisionFilter
from guard.db import Database
from guard.errors import InvalidInput

pytestmark = pytest.mark.storage

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
VERDICTS = ("allow", "deny", "allow_with_conditions")
REASONS = ("no_consent", "public_figure", "consent_revoked", "scope_not_granted")


@pytest.fixture
def log(database_url: str, tmp_path: Path) -> AuditLog:
    create_checkpoint_key(tmp_path / "audit", "guard.test")
    signer = load_checkpoint_signer(tmp_path / "audit" / PRIVATE_KEY_FILE, "guard.test")
    return AuditLog(Database(database_url), signer)


def decision(n: int, tenant: str, rng: random.Random) -> dict[str, Any]:
    verdict = rng.choice(VERDICTS)
    reasons = sorted(rng.sample(REASONS, rng.randint(1, 2))) if verdict == "deny" else []
    return {
        "v": 2,
        "kind": "decision",
        "time": (NOW - timedelta(minutes=37 * n)).isoformat(),
        "tenant": tenant,
        "requester": f"{tenant}-req-{n % 3}",
        "operation": rng.choice(("relight", "restyle")),
        "stage": "input",
        "decision_id": f"dec_{tenant}_{n}",
        "verdict": verdict,
        "reason_codes": reasons,
        "policy": {"id": "default", "version": rng.choice(("1", "2"))},
        "subject_refs": [f"{tenant}-subject"] if n % 5 == 0 else [],
        "grant_refs": [],
    }


@pytest.fixture
def history(log: AuditLog) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(3)
    made: dict[str, list[dict[str, Any]]] = {"acme": [], "globex": []}
    log.append({"v": 2, "kind": "policy_in_force", "time": NOW.isoformat(), "sha256": "0" * 64})
    for n in range(60):
        for tenant, entries in made.items():
            entry = decision(n, tenant, rng)
            entries.append(entry)
            log.append(entry)
    return made


def ids(rows: Any) -> set[str]:
    return {row.decision_id for row in rows}


def test_every_append_is_indexed(log: AuditLog, history: dict[str, list[dict[str, Any]]]) -> None:
    with log.db.transaction() as session:
        indexed = session.scalar(select(func.count()).select_from(AuditIndexRow))
    assert indexed == log.size() == 121


def test_filters_select_what_the_entries_say(
    log: AuditLog, history: dict[str, list[dict[str, Any]]]
) -> None:
    search = AuditSearch(log.db)
    acme = history["acme"]
    cases: list[tuple[DecisionFilter, list[dict[str, Any]]]] = [
        (DecisionFilter(tenant="acme"), acme),
        (
            DecisionFilter(tenant="acme", verdict="deny"),
            [e for e in acme if e["verdict"] == "deny"],
        ),
        (
            DecisionFilter(tenant="acme", reason="public_figure"),
            [e for e in acme if "public_figure" in e["reason_codes"]],
        ),
        (
            DecisionFilter(tenant="acme", operation="relight"),
            [e for e in acme if e["operation"] == "relight"],
        ),
        (
            DecisionFilter(tenant="acme", requesters=("acme-req-1",)),
            [e for e in acme if e["requester"] == "acme-req-1"],
        ),
        (DecisionFilter(tenant="acme", requesters=()), []),
        (
            DecisionFilter(tenant="acme", policy_version="2"),
            [e for e in acme if e["policy"]["version"] == "2"],
        ),
        (
            DecisionFilter(tenant="acme", since=NOW - timedelta(hours=10), until=NOW),
            [
                e
                for e in acme
                if NOW - timedelta(hours=10) <= datetime.fromisoformat(e["time"]) < NOW
            ],
        ),
    ]
    for where, expected in cases:
        page = search.decisions(where, limit=500)
        assert ids(page.rows) == {e["decision_id"] for e in expected}, where
        assert search.count(where) == len(expected)
    denied = search.decisions(DecisionFilter(tenant="acme", verdict="deny"), limit=500).rows
    by_id = {e["decision_id"]: e for e in acme}
    assert all(list(r.reason_codes) == by_id[r.decision_id]["reason_codes"] for r in denied)


def test_keyset_pages_cover_every_decision_once_newest_first(
    log: AuditLog, history: dict[str, list[dict[str, Any]]]
) -> None:
    search = AuditSearch(log.db)
    seen: list[str] = []
    times: list[datetime] = []
    after = None
    while True:
        page = search.decisions(DecisionFilter(tenant="globex"), after=after, limit=7)
        seen += [row.decision_id for row in page.rows]
        times += [row.at for row in page.rows]
        assert all(row.tenant == "globex" for row in page.rows)
        if page.next is None:
            break
        after = Cursor.parse(page.next.token())
    assert sorted(seen) == sorted(e["decision_id"] for e in history["globex"])
    assert len(seen) == len(set(seen)) and times == sorted(times, reverse=True)


def test_a_tenant_never_sees_another_tenants_rows(
    log: AuditLog, history: dict[str, list[dict[str, Any]]]
) -> None:
    search = AuditSearch(log.db)
    hour = timedelta(hours=1)
    everything = DecisionFilter(tenant=None)
    assert search.count(everything) == 120
    assert ids(search.decisions(DecisionFilter(tenant="acme"), limit=500).rows).isdisjoint(
        e["decision_id"] for e in history["globex"]
    )
    per_hour = search.per_hour("acme", NOW - 50 * hour, NOW + hour)
    assert sum(c.count for c in per_hour) == 60
    reasons = search.reasons_per_hour("acme", NOW - 50 * hour, NOW + hour)
    assert sum(c.count for c in reasons) == sum(len(e["reason_codes"]) for e in history["acme"])
    top = search.top_requesters("acme", NOW - 50 * hour, NOW + hour)
    assert {t for t, _, _ in top} == {"acme"} and sum(n for _, _, n in top) == 60
    # The keyed reference of one tenant's subject finds nothing under another tenant.
    assert search.referring("globex", "acme-subject") == []
    assert len(search.referring("acme", "acme-subject")) == 12
    assert log.entries_referring("acme-subject", tenant="globex") == []
    assert [e["decision_id"] for _, e in log.entries_referring("acme-subject", tenant="acme")] == [
        e["decision_id"] for e in history["acme"] if e["subject_refs"]
    ]


@given(st.text(max_size=40))
def test_a_cursor_that_is_not_ours_is_refused_as_invalid_input(token: str) -> None:
    try:
        cursor = Cursor.parse(token)
    except InvalidInput:
        return
    assert Cursor.parse(cursor.token()) == cursor


def test_entries_of_any_shape_are_indexed_without_failing() -> None:
    """The log accepts any JSON object; the index takes what it can use and never refuses."""
    odd = index_rows({"kind": 7, "tenant": ["x"], "time": "yesterday", "reason_codes": "deny"})
    assert odd.entry["tenant"] == "" and odd.entry["kind"] == "" and odd.reasons == ()
    # A time without a zone is UTC; one no datetime can hold is the epoch, never a failure.
    assert index_rows({"time": "2026-12-06T10:00:00"}).entry["at"] == datetime(
        2026, 12, 6, 10, tzinfo=UTC
    )
    assert index_rows({"time": "0001-01-01T00:00:00+01:00"}).entry["at"].year == 1970
    assert Cursor.parse(Cursor(datetime(1, 1, 3, tzinfo=UTC), 5).token()).at.year == 1
    long = index_rows(
        {"kind": "decision", "time": NOW.isoformat(), "reason_codes": ["x" * 70, "x" * 80]}
    )
    assert len(long.reasons) == 1  # cut to the column, then one row per code
