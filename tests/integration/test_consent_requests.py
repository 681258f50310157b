"""Consent requests and management links in the registry (the person's pages use them): one
token scheme, single use, expiring, bound to one request, and no token of one kind opens
another; every change audited, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from guard import Guard
from guard.errors import Conflict, InvalidInput, NotFound, UnprocessableInput
from guard.identity import ConsentLevel, LinkExpired, LinkUsed, RequestStatus
from guard.identity.consent_requests import LinkLocked
from tests.support.guards import GuardFactory
from tests.support.registry import EVIDENCE

pytestmark = pytest.mark.storage


@pytest.fixture
def guard(make_guard: GuardFactory) -> Guard:
    return make_guard()


def _ask(guard: Guard, subject_id: str | None = None, **changes: object) -> tuple[str, str]:
    values: dict[str, object] = {
        "tenant": "acme",
        "requester": "acme/app",
        "requester_display_name": "Acme Photo",
        "tenant_display_name": "Acme Ltd",
        "scopes": ["relight", "relight", " background_blur "],
        "grant_days": 30,
        "message": "For the catalogue.",
        **changes,
    }
    issued = guard.registry.consent_requests.create(subject_id, **values)  # type: ignore[arg-type]
    return issued.request.id, issued.token


def _kinds(guard: Guard) -> list[str]:
    return [entry["kind"] for _, entry in guard.audit.entries(limit=10_000)]


def test_accepting_makes_a_person_confirmed_grant_once(guard: Guard) -> None:
    request_id, token = _ask(guard, new_subject_name="Model A")
    opened = guard.registry.consent_requests.open(token)
    assert opened.scopes == ("background_blur", "relight") and opened.id == request_id
    answer = guard.registry.consent_requests.accept(token)
    accepted, grant = answer.request, answer.grant
    assert guard.registry.management_links.holder(answer.link.token).subject_id == (
        accepted.subject_id
    )
    assert accepted.status is RequestStatus.ACCEPTED and accepted.grant_id == grant.id
    assert grant.level is ConsentLevel.PERSON_CONFIRMED and grant.grantee == "acme/app"
    assert grant.evidence_sha256 == opened.evidence_sha256()
    assert grant.expires_at is not None
    assert grant.expires_at - grant.not_before == timedelta(days=30)
    for answer in (
        guard.registry.consent_requests.open,
        guard.registry.consent_requests.accept,
        guard.registry.consent_requests.decline,
    ):
        with pytest.raises(LinkUsed):
            answer(token)
    assert len(guard.registry.grants_for(accepted.subject_id)) == 1
    kinds = _kinds(guard)
    assert kinds.count("consent_requested") == kinds.count("consent_confirmed") == 1
    assert "subject_created" in kinds and "consent_granted" in kinds
    assert "management_link_issued" in kinds


def test_declining_and_expiry(guard: Guard) -> None:
    subject = guard.registry.create_subject("acme")
    _, token = _ask(guard, subject.id)
    declined = guard.registry.consent_requests.decline(token)
    assert declined.status is RequestStatus.DECLINED and declined.grant_id is None
    assert guard.registry.grants_for(subject.id) == []
    assert "consent_request_declined" in _kinds(guard)

    request_id, token = _ask(guard, subject.id, valid_for=timedelta(minutes=5))
    later = guard.registry.consent_requests.get(request_id).expires_at + timedelta(seconds=1)
    with pytest.raises(LinkExpired):
        guard.registry.consent_requests.accept(token, now=later)
    assert guard.registry.consent_requests.get(request_id).status_at(later) is (
        RequestStatus.EXPIRED
    )


def test_forged_tokens_and_other_kinds_open_nothing(guard: Guard) -> None:
    subject = guard.registry.create_subject("acme")
    _, token = _ask(guard, subject.id)
    grant = guard.registry.grant(
        subject.id, grantee="acme/app", scopes=["relight"], evidence_sha256=EVIDENCE
    )
    confirmation = guard.registry.confirmations.issue(grant.id).token
    link = guard.registry.management_links.issue(subject.id).token
    prefix, expiry, secret, tag = token.split(".")
    forged = [
        f"{prefix}.{int(expiry) + 3600}.{secret}.{tag}",
        f"{prefix}.{expiry}.{secret[:-1]}{'B' if secret[-1] == 'A' else 'A'}.{tag}",
        confirmation,
        link,
        "lgr_creq_000000000000000000000000.1.x.y",
        "",
    ]
    for bad in forged:
        with pytest.raises(NotFound, match="not valid"):
            guard.registry.consent_requests.open(bad)
    with pytest.raises(NotFound):
        guard.registry.management_links.holder(token)
    assert guard.registry.consent_requests.open(token).status is RequestStatus.PENDING


def test_a_request_needs_a_subject_of_its_tenant_and_clean_text(guard: Guard) -> None:
    other = guard.registry.create_subject("globex")
    with pytest.raises(NotFound):
        _ask(guard, other.id)
    for changes in (
        {"scopes": [" "]},
        {"grant_days": 0},
        {"requester": "globex/app"},
        {"requester_display_name": "  "},
        {"message": "nul\x00"},
        {"valid_for": timedelta(days=31)},
    ):
        with pytest.raises(InvalidInput):
            _ask(guard, new_subject_name="X", **changes)
    assert [s.tenant for s in guard.registry.list_subjects()] == ["globex"]


def test_management_links_rotate_revoke_and_go_with_the_subject(guard: Guard) -> None:
    subject = guard.registry.create_subject("acme")
    links = guard.registry.management_links
    first, second = links.issue(subject.id).token, links.issue(subject.id).token
    assert links.holder(first).subject_id == subject.id
    rotated = links.rotate(first).token
    with pytest.raises(NotFound):
        links.holder(first)
    # Only the presented link is replaced: another holder's link keeps working.
    assert links.holder(second).subject_id == subject.id
    assert links.holder(rotated).tenant == "acme"
    links.revoke(rotated)
    with pytest.raises(NotFound):
        links.holder(rotated)
    fresh = links.issue(subject.id).token
    _ask(guard, subject.id)
    guard.registry.erase(subject.id, by_person=True)
    with pytest.raises(NotFound):
        links.holder(fresh)
    assert guard.registry.consent_requests.for_subject(subject.id) == []
    kinds = _kinds(guard)
    assert {"management_link_rotated", "management_link_revoked"} <= set(kinds)
    assert "subject_erased_by_person" in kinds


def test_a_second_accept_cannot_lock_the_person_out(guard: Guard) -> None:
    """The person accepts and keeps their link; an integrator that asks again and accepts the
    second request itself gets no link of its own, so it cannot rotate the person's away."""
    _, token = _ask(guard, new_subject_name="Model A")
    first = guard.registry.consent_requests.accept(token)
    assert first.link is not None
    person = first.link.token
    _, again = _ask(guard, first.request.subject_id)
    second = guard.registry.consent_requests.accept(again)
    assert second.link is None
    assert guard.registry.management_links.holder(person).subject_id == first.request.subject_id
    assert _kinds(guard).count("management_link_issued") == 1


def test_the_persons_withdrawal_binds_the_integrator(guard: Guard) -> None:
    """The person withdraws on their page; the integrator cannot undo it with an attested
    grant (refused, nothing stored or audited); a new request the person accepts re-grants."""
    _, token = _ask(guard, new_subject_name="Model A")
    accepted = guard.registry.consent_requests.accept(token)
    subject_id = accepted.request.subject_id
    guard.registry.revoke(accepted.grant.id, by_person=True)
    before = (guard.registry.grants_for(subject_id), _kinds(guard))
    for scopes in (["relight"], ["background_blur", "other"]):
        with pytest.raises(Conflict, match="withdrew") as refused:
            guard.registry.grant(
                subject_id, grantee="acme/app", scopes=scopes, evidence_sha256=EVIDENCE
            )
        assert refused.value.http_status == 409
    assert (guard.registry.grants_for(subject_id), _kinds(guard)) == before
    # Another grantee, or a scope the person did not withdraw, is the integrator's to record.
    guard.registry.grant(
        subject_id, grantee="acme/other", scopes=["relight"], evidence_sha256=EVIDENCE
    )
    guard.registry.grant(subject_id, grantee="acme/app", scopes=["other"], evidence_sha256=EVIDENCE)
    # The integrator's own revocation binds nothing.
    own = guard.registry.grant(
        subject_id, grantee="acme/x", scopes=["relight"], evidence_sha256=EVIDENCE
    )
    guard.registry.revoke(own.id)
    guard.registry.grant(subject_id, grantee="acme/x", scopes=["relight"], evidence_sha256=EVIDENCE)
    # The person accepts a new request: the integrator may record grants again.
    _, again = _ask(guard, subject_id)
    guard.registry.consent_requests.accept(again)
    guard.registry.grant(
        subject_id, grantee="acme/app", scopes=["relight"], evidence_sha256=EVIDENCE
    )


def test_display_text_cannot_hide_what_it_says(guard: Guard) -> None:
    """A right-to-left override (or any format character) can make a name read as another;
    a scope is an operation name (what the gate matches), nothing else."""
    for changes in (
        {"requester_display_name": "Acme \u202eotohP"},
        {"tenant_display_name": "\u200b\u200b"},
        {"new_subject_name": "Eve\u2066"},
        {"message": "Hi\u200d"},
        {"scopes": ["Relight"]},
        {"scopes": ["relight now"]},
        {"scopes": ["x" * 65]},
        {"scopes": ["relight\u202e"]},
    ):
        with pytest.raises(UnprocessableInput) as refused:
            _ask(guard, **{"new_subject_name": "X", **changes})
        assert refused.value.http_status == 422, changes
    assert guard.registry.list_subjects() == []


def test_a_link_locks_after_five_failed_photos(guard: Guard) -> None:
    request_id, token = _ask(guard, new_subject_name="Model A")
    requests = guard.registry.consent_requests
    assert [requests.photo_failed(token) for _ in range(5)] == [False] * 4 + [True]
    for answer in (requests.open, requests.accept, requests.decline, requests.photo_failed):
        with pytest.raises(LinkLocked, match="locked") as locked:
            answer(token)
        assert locked.value.http_status == 410
    assert requests.get(request_id).status is RequestStatus.LOCKED
    assert _kinds(guard).count("consent_request_locked") == 1
