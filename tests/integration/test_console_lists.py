"""The console's lists that stop at a limit say so: a subject report and an erasure
certificate past their listed entries (and their receipts.json listing the same entries), the
overview's open usage flags; and the overview's and the decisions page's smaller promises (a
top requester with no reference is not a link, hourly labels across midnight carry the date,
the filter form keeps the seconds it was given)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from guard.api import create_app
from guard.api.flags import UsageFlagRow
from guard.api.keys import ApiKeyStore, Role
from guard.audit.log import PUBLIC_KEY_FILE
from guard.audit.search import AuditSearch
from guard.audit.tables import AuditCheckpointRow
from guard.identity.models import ErasureRow, FaceTemplateRow
from guard.pipeline import Guard
from guard.web.console import consent, overview, subjects
from tests.support.guards import GuardFactory


@pytest.fixture
def setup(make_guard: GuardFactory) -> Iterator[tuple[TestClient, Guard]]:
    guard = make_guard()
    with TestClient(create_app(guard=guard), base_url="https://testserver") as client:
        yield client, guard


def _sign_in(client: TestClient, token: str) -> None:
    client.cookies.clear()
    page = client.get("/console/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    answer = client.post(
        "/console/sign-in", data={"key": token, "csrf": csrf.group(1)}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text


def _decision(guard: Guard, tenant: str, n: int, *, ref: str | None, requester: str | None) -> None:
    guard.audit.append(
        {
            "v": 2,
            "kind": "decision",
            "time": datetime.now(UTC).isoformat(),
            "tenant": tenant,
            "requester": requester,
            "operation": "relight",
            "stage": "input",
            "decision_id": f"dec_{n:032x}",
            "verdict": "allow",
            "reason_codes": [],
            "policy": {"id": "default", "version": "1"},
            "subject_refs": [ref] if ref else [],
        }
    )


def _indices(page: str) -> list[int]:
    found = re.search(r"data-indices='([^']*)'", page)
    assert found is not None
    return [int(i) for i in json.loads(found.group(1))]


def test_a_subject_report_past_its_limit_says_so_and_proves_what_it_lists(
    setup: tuple[TestClient, Guard], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, guard = setup
    monkeypatch.setattr(subjects, "LISTED", 3)
    subject = guard.registry.create_subject("acme", display_name="Many entries")
    ref = guard.registry.subject_ref(subject.id, "acme")
    for n in range(5):
        _decision(guard, "acme", n, ref=ref, requester="r" * 64)
    _sign_in(client, ApiKeyStore(guard.db).create(tenant="acme", role=Role.AUDITOR).token)

    page = client.get(f"/console/subjects/{subject.id}")
    assert page.status_code == 200, page.text
    assert "more than 3 audit entries; the first 3 are listed" in page.text
    first = AuditSearch(guard.db).referring("acme", ref)[:3]
    assert _indices(page.text) == first
    receipts = client.get(f"/console/subjects/{subject.id}/receipts.json").json()
    assert [e["index"] for e in receipts["entries"]] == first

    # Under the limit, no warning.
    monkeypatch.setattr(subjects, "LISTED", len(AuditSearch(guard.db).referring("acme", ref)))
    assert "entries-cut" not in client.get(f"/console/subjects/{subject.id}").text


def test_an_erasure_certificate_past_its_limit_covers_only_what_it_lists(
    setup: tuple[TestClient, Guard], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, guard = setup
    monkeypatch.setattr(subjects, "LISTED", 3)
    subject = guard.registry.create_subject("acme", display_name="Erased")
    ref = guard.registry.subject_ref(subject.id, "acme")
    for n in range(4):
        _decision(guard, "acme", n, ref=ref, requester="r" * 64)
    guard.registry.erase(subject.id)
    with guard.db.transaction() as session:
        erasure = session.scalars(
            select(ErasureRow.certificate_id).where(ErasureRow.tenant == "acme")
        ).one()
    _sign_in(client, ApiKeyStore(guard.db).create(tenant="acme", role=Role.AUDITOR).token)

    page = client.get(f"/console/erasures/{erasure}")
    assert page.status_code == 200, page.text
    assert "This certificate covers only the listed entries" in page.text
    assert "not among the listed entries" in page.text  # the erasure entry is past the limit
    first = AuditSearch(guard.db).referring("acme", ref)[:3]
    assert _indices(page.text) == first
    receipts = client.get(f"/console/erasures/{erasure}/receipts.json").json()
    assert [e["index"] for e in receipts["entries"]] == first


def test_the_overview_says_when_open_flags_are_cut_and_links_no_empty_requester(
    setup: tuple[TestClient, Guard], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, guard = setup
    monkeypatch.setattr(overview, "FLAGS_LISTED", 2)
    key = ApiKeyStore(guard.db).create(tenant="acme", role=Role.ADMIN)
    with guard.db.transaction() as session:
        for n in range(3):
            session.add(
                UsageFlagRow(
                    id=f"flg_{n:016x}",
                    key_id=key.key.id,
                    tenant="acme",
                    rule="rate",
                    detail="too many",
                    window_start=n,
                    created_at=datetime.now(UTC),
                    cleared_at=None,
                )
            )
    _decision(guard, "acme", 1, ref=None, requester=None)
    _sign_in(client, ApiKeyStore(guard.db).create(tenant=None, role=Role.OPERATOR).token)
    page = client.get("/console")
    assert page.status_code == 200, page.text
    assert "more than 2 open usage flags" in page.text
    assert "no requester recorded" in page.text
    assert "requester_ref=&" not in page.text
    _sign_in(client, key.token)
    page = client.get("/console")
    assert "more than 2 open usage flags" in page.text
    assert "no requester recorded" in page.text


def test_the_consent_page_says_when_its_lists_are_cut_and_counts_every_grant_ending_soon(
    setup: tuple[TestClient, Guard], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, guard = setup
    monkeypatch.setattr(consent, "LISTED", 2)
    now = datetime.now(UTC)
    for n in range(3):
        subject = guard.registry.create_subject("acme", display_name=f"Person {n}")
        # Only the last, past the listed two, ends soon: the summary still counts it.
        ends = now + (timedelta(days=3) if n == 2 else timedelta(days=300))
        guard.registry.grant(
            subject.id,
            grantee="acme/app",
            scopes=["relight"],
            evidence_sha256="e" * 64,
            expires_at=ends,
        )
    other = guard.registry.create_subject("globex", display_name="Someone else")
    guard.registry.grant(
        other.id,
        grantee="globex/app",
        scopes=["relight"],
        evidence_sha256="e" * 64,
        expires_at=now + timedelta(days=1),
    )
    _sign_in(client, ApiKeyStore(guard.db).create(tenant="acme", role=Role.AUDITOR).token)
    page = client.get("/console/consent")
    assert page.status_code == 200, page.text
    assert 'id="subjects-cut"' in page.text and 'id="grants-cut"' in page.text
    assert 'id="declined-cut"' not in page.text and 'id="erasures-cut"' not in page.text
    assert "Person 0" in page.text and "Person 2" not in page.text
    assert re.search(r"Ending soon:</strong> 1 grant in force ends", page.text), page.text
    assert "Someone else" not in page.text


def test_subject_listing_counts_templates_of_the_tenants_subjects(
    setup: tuple[TestClient, Guard],
) -> None:
    _, guard = setup
    mine = guard.registry.create_subject("acme")
    theirs = guard.registry.create_subject("globex")
    with guard.db.transaction() as session:
        for subject_id in (mine.id, theirs.id, theirs.id):
            session.add(
                FaceTemplateRow(
                    subject_id=subject_id,
                    engine="dlib",
                    dimension=128,
                    embedding_ciphertext=b"x",
                    created_at=datetime.now(UTC),
                )
            )
    assert [(s.id, s.template_count) for s in guard.registry.list_subjects("acme")] == [
        (mine.id, 1)
    ]
    everyone = {s.id: s.template_count for s in guard.registry.list_subjects()}
    assert everyone == {mine.id: 1, theirs.id: 2}
    assert len(guard.registry.list_subjects(limit=1)) == 1


def test_a_missing_audit_key_is_a_503_page_that_names_no_file(
    setup: tuple[TestClient, Guard],
) -> None:
    client, guard = setup
    _decision(guard, "acme", 1, ref=None, requester="r" * 64)
    _sign_in(client, ApiKeyStore(guard.db).create(tenant="acme", role=Role.AUDITOR).token)
    key = guard.settings.audit_keys_dir / PUBLIC_KEY_FILE
    key.rename(key.with_suffix(".moved"))
    page = client.get("/console")
    assert page.status_code == 503, page.text
    assert str(guard.settings.data_dir) not in page.text and "vkey" not in page.text
    assert "Content-Security-Policy" in page.headers


def test_a_log_without_its_latest_checkpoint_is_a_problem_on_the_overview(
    setup: tuple[TestClient, Guard],
) -> None:
    """A damaged log (its latest checkpoint row gone) is said on the page, not a 404."""
    client, guard = setup
    _decision(guard, "acme", 1, ref=None, requester="r" * 64)
    with guard.db.transaction() as session:
        session.execute(delete(AuditCheckpointRow))
    _sign_in(client, ApiKeyStore(guard.db).create(tenant="acme", role=Role.AUDITOR).token)
    page = client.get("/console")
    assert page.status_code == 200, page.text
    assert "the latest checkpoint could not be verified" in page.text


def test_hourly_labels_carry_the_date_across_midnight(setup: tuple[TestClient, Guard]) -> None:
    _, guard = setup
    _decision(guard, "acme", 1, ref=None, requester="r" * 64)
    now = datetime.now(UTC)
    until = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    width = timedelta(hours=1)
    search = AuditSearch(guard.db)
    crossing, _ = overview._charts(search, "acme", until - timedelta(days=2), until, width)
    assert crossing.bucket_labels[0] == f"{until - timedelta(days=2):%d %b %H:00}"
    assert f"<title>{now:%d %b %H:00}: allow 1</title>" in crossing.svg  # the bar's tooltip
    assert f">{crossing.bucket_labels[0]}</text>" in crossing.svg  # the axis
    midnight = datetime(2026, 12, 7, tzinfo=UTC)
    within, _ = overview._charts(search, "acme", midnight - timedelta(days=1), midnight, width)
    assert within.bucket_labels[0] == "00:00"


def test_the_filter_form_keeps_the_seconds_it_was_given(setup: tuple[TestClient, Guard]) -> None:
    client, guard = setup
    _sign_in(client, ApiKeyStore(guard.db).create(tenant="acme", role=Role.AUDITOR).token)
    page = client.get(
        "/console/decisions",
        params={"since": "2026-12-05T10:00:30", "until": "2026-12-05T11:15:15"},
    )
    assert page.status_code == 200, page.text
    assert 'value="2026-12-05T10:00:30" step="1"' in page.text
    assert 'value="2026-12-05T11:15:15" step="1"' in page.text
    minutes = client.get("/console/decisions", params={"until": "2026-12-05T11:15"})
    assert 'value="2026-12-05T11:15">' in minutes.text
