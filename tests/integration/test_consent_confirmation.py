"""Person-confirmed consent: a one-time, signed, expiring token raises a grant from
``attested`` to ``person_confirmed``; every way of misusing the token is refused and changes
nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from guard import Guard
from guard.errors import Conflict, InvalidInput
from guard.identity import ConsentLevel
from tests.support.guards import GuardFactory
from tests.support.registry import EVIDENCE

pytestmark = pytest.mark.storage


@pytest.fixture
def guard(make_guard: GuardFactory) -> Guard:
    return make_guard()


def _grant(guard: Guard) -> str:
    subject = guard.registry.create_subject("acme")
    grant = guard.registry.grant(
        subject.id, grantee="acme/app", scopes=["relight"], evidence_sha256=EVIDENCE
    )
    assert grant.level is ConsentLevel.ATTESTED
    return grant.id


def _kinds(guard: Guard) -> list[str]:
    return [entry["kind"] for _, entry in guard.audit.entries(limit=10_000)]


def test_the_person_confirms_once(guard: Guard) -> None:
    grant_id = _grant(guard)
    issued = guard.registry.confirmations.issue(grant_id)
    confirmed = guard.registry.confirmations.redeem(issued.token)
    assert confirmed.level is ConsentLevel.PERSON_CONFIRMED and confirmed.confirmed_at
    assert guard.registry.get_grant(grant_id).level is ConsentLevel.PERSON_CONFIRMED
    with pytest.raises(InvalidInput, match="not valid"):
        guard.registry.confirmations.redeem(issued.token)  # spent
    with pytest.raises(Conflict, match="already confirmed"):
        guard.registry.confirmations.issue(grant_id)
    kinds = _kinds(guard)
    assert kinds.count("consent_confirmation_requested") == 1
    assert kinds.count("consent_confirmed") == 1


def test_forged_altered_and_replaced_tokens_are_refused(guard: Guard) -> None:
    grant_id = _grant(guard)
    first = guard.registry.confirmations.issue(grant_id)
    second = guard.registry.confirmations.issue(grant_id)  # replaces the first
    prefix, expiry, secret, tag = second.token.split(".")
    forged = [
        first.token,
        f"{prefix}.{int(expiry) + 3600}.{secret}.{tag}",  # a longer life, same tag
        # One character of the secret changed (never to itself: the secret may end in "A").
        f"{prefix}.{expiry}.{secret[:-1]}{'B' if secret[-1] == 'A' else 'A'}.{tag}",
        f"{prefix}.{expiry}.{secret}.{'0' * 64}",
        "lgc_grt_000000000000000000000000.1.x.y",
        "",
    ]
    for token in forged:
        with pytest.raises(InvalidInput, match="not valid"):
            guard.registry.confirmations.redeem(token)
    assert guard.registry.get_grant(grant_id).level is ConsentLevel.ATTESTED
    assert guard.registry.confirmations.redeem(second.token).level is ConsentLevel.PERSON_CONFIRMED


def test_an_expired_token_or_a_revoked_grant_confirms_nothing(guard: Guard) -> None:
    grant_id = _grant(guard)
    issued = guard.registry.confirmations.issue(grant_id, valid_for=timedelta(minutes=5))
    later = issued.expires_at + timedelta(seconds=1)
    with pytest.raises(InvalidInput, match="expired"):
        guard.registry.confirmations.redeem(issued.token, now=later)
    guard.registry.revoke(grant_id)
    with pytest.raises(Conflict, match="no longer in force"):
        guard.registry.confirmations.redeem(issued.token)
    with pytest.raises(Conflict, match="not in force"):
        guard.registry.confirmations.issue(grant_id)
    assert guard.registry.get_grant(grant_id).level is ConsentLevel.ATTESTED
    with pytest.raises(InvalidInput, match="5 minutes to 30 days"):
        guard.registry.confirmations.issue(_grant(guard), valid_for=timedelta(days=90))
