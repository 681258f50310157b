"""The seeded console history (tests/support/history.py) against the audit search index, on
PostgreSQL behind the real service: what the history says it made is what AuditSearch finds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from guard import Guard
from guard.api import create_app
from guard.audit.search import AuditSearch, Cursor, DecisionFilter
from guard.bootstrap import initialise
from guard.config import Settings
from guard.faces import FaceEngine
from tests.support.history import SeededHistory, seed_history
from tests.support.live import LiveService, serve

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TENANTS = ("acme-co", "globex-co", "initech-co")
PER_TENANT = 200


@pytest.fixture(scope="module")
def seeded(
    postgres_server: str,
    postgres_template: str,
    face_engine: FaceEngine,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LiveService, SeededHistory]]:
    from tests.support.databases import postgres_database

    with postgres_database(postgres_server, template=postgres_template) as url:
        data_dir: Path = tmp_path_factory.mktemp("seeded-var")
        settings = Settings(data_dir=data_dir, database_url=url, api_rate_burst=10_000)
        initialise(settings, face_engine)
        guard = Guard(settings, face_engine=face_engine)
        running = serve(create_app(guard=guard))
        try:
            service = LiveService(guard, next(running))
            yield service, seed_history(service, tenants=TENANTS, decisions_per_tenant=PER_TENANT)
        finally:
            next(running, None)
            guard.close()


def test_counts_match_the_index(seeded: tuple[LiveService, SeededHistory]) -> None:
    service, history = seeded
    search = AuditSearch(service.guard.db)
    for tenant in history.tenants:
        expected = tenant.expected
        assert expected.total >= PER_TENANT + 1  # and the real checks
        assert tenant.real_decision_ids
        assert search.count(DecisionFilter(tenant=tenant.name)) == expected.total
        for verdict in ("allow", "deny", "allow_with_conditions"):
            assert search.count(DecisionFilter(tenant=tenant.name, verdict=verdict)) == (
                expected.by_verdict.get(verdict, 0)
            ), verdict
        assert set(expected.by_verdict) == {"allow", "deny", "allow_with_conditions"}
        for reason in ("no_consent", "public_figure", "consent_revoked", "consent_granted"):
            assert expected.by_reason.get(reason, 0) > 0, reason
            assert (
                search.count(DecisionFilter(tenant=tenant.name, reason=reason))
                == (expected.by_reason[reason])
            ), reason
        for requester, ref in tenant.requester_refs.items():
            assert search.count(DecisionFilter(tenant=tenant.name, requesters=(ref,))) == (
                expected.by_requester.get(requester, 0)
            ), requester
        assert len(expected.by_policy_version) == 2
        for version, n in expected.by_policy_version.items():
            assert search.count(DecisionFilter(tenant=tenant.name, policy_version=version)) == n
        for operation, n in expected.by_operation.items():
            assert search.count(DecisionFilter(tenant=tenant.name, operation=operation)) == n


def test_keyset_paging_gives_each_decision_once(
    seeded: tuple[LiveService, SeededHistory],
) -> None:
    service, history = seeded
    search = AuditSearch(service.guard.db)
    tenant = history.tenants[1]
    seen: list[int] = []
    after: Cursor | None = None
    pages = 0
    while True:
        page = search.decisions(DecisionFilter(tenant=tenant.name), after=after, limit=37)
        pages += 1
        assert all(row.tenant == tenant.name for row in page.rows)
        seen.extend(row.idx for row in page.rows)
        if page.next is None:
            break
        after = page.next
    assert len(seen) == len(set(seen)) == tenant.expected.total
    assert pages == -(-tenant.expected.total // 37)
    # Newest first, and the filtered pages agree with the counts too.
    denied = list(
        search.every_decision(DecisionFilter(tenant=tenant.name, verdict="deny"), batch=50)
    )
    assert len(denied) == tenant.expected.by_verdict["deny"]
    times = [row.at for row in denied]
    assert times == sorted(times, reverse=True)


def test_per_hour_and_days_add_up(seeded: tuple[LiveService, SeededHistory]) -> None:
    service, history = seeded
    search = AuditSearch(service.guard.db)
    since = history.since - timedelta(hours=1)
    until = history.now + timedelta(hours=2)
    for tenant in history.tenants:
        hours = search.per_hour(tenant.name, since, until)
        assert sum(h.count for h in hours) == tenant.expected.total
        by_verdict: Counter[str] = Counter()
        by_day: Counter[str] = Counter()
        for h in hours:
            by_verdict[h.key] += h.count
            by_day[h.hour.date().isoformat()] += h.count
        assert dict(by_verdict) == dict(tenant.expected.by_verdict)
        assert dict(by_day) == dict(tenant.expected.by_day)
        reasons: Counter[str] = Counter()
        for h in search.reasons_per_hour(tenant.name, since, until):
            reasons[h.key] += h.count
        assert dict(reasons) == dict(tenant.expected.by_reason)


def test_referring_finds_a_subjects_decisions(seeded: tuple[LiveService, SeededHistory]) -> None:
    service, history = seeded
    search = AuditSearch(service.guard.db)
    for tenant in history.tenants:
        erased = next(s for s in tenant.subjects if s.erased)
        assert erased.id == tenant.erased_subject_id
        for subject in tenant.subjects:
            found = search.referring(tenant.name, subject.ref)
            decisions = [i for i in found if service.guard.audit.entry(i).get("kind") == "decision"]
            assert len(decisions) == tenant.expected.by_subject.get(subject.id, 0), subject
        assert tenant.expected.by_subject.get(erased.id, 0) > 0
        # The erasure is in the log, under the erased subject's reference.
        carrying = search.referring(tenant.name, erased.ref)
        log = service.guard.audit
        assert any(log.entry(i).get("kind") == "subject_erased" for i in carrying)
        # Another tenant's reference finds nothing here.
        other = history.tenants[(history.tenants.index(tenant) + 1) % len(history.tenants)]
        assert search.referring(tenant.name, other.subjects[0].ref) == []
