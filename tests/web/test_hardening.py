"""Attacks on the person's pages that the security review found, each reproduced: a second
accept that would lock the person out, internals on error pages, and so on."""

from __future__ import annotations

import re
import tempfile
from typing import Any

import httpx
import pytest

from guard.errors import Unavailable
from guard.samples import SampleName, sample_bytes
from tests.web.conftest import WebService
from tests.web.flows import consent_request, enrolled_subject, request_status

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SECRET = "postgresql://guard:hunter2@db.internal:5432/guard /var/lib/guard/keys/audit.key"


def test_server_errors_show_no_internals(web: WebService, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*_: object, **__: object) -> None:
        raise Unavailable(f"cannot reach {SECRET}")

    monkeypatch.setattr(web.guard.registry.consent_requests, "open", down)
    with httpx.Client(base_url=web.base_url) as client:
        answer = client.get("/consent/lgr_creq_000000000000000000000000.1.x.y")
    assert answer.status_code == 503
    assert "try again later" in answer.text
    for leak in ("postgresql", "hunter2", "db.internal", "audit.key", "/var/lib"):
        assert leak not in answer.text


def test_a_receipt_index_out_of_range_is_not_found(web: WebService) -> None:
    subject = web.guard.registry.create_subject("receipt-co")
    link = web.guard.registry.management_links.issue(subject.id).token
    with httpx.Client(base_url=web.base_url, cookies={"lg_me": link}) as client:
        for index in (2**63, 2**64 + 5, 10**30):
            answer = client.get(f"/me/receipts/{index}.json")
            assert answer.status_code == 404, (index, answer.status_code)
        assert client.get("/me").status_code == 200


def test_the_integrator_cannot_undo_a_withdrawal_over_the_api(web: WebService) -> None:
    asked = consent_request(web, "undo-co", scopes=["relight"])
    token = asked["url"].rsplit("/consent/", 1)[1]
    accepted = web.guard.registry.consent_requests.accept(token)
    web.guard.registry.revoke(accepted.grant.id, by_person=True)  # what /me/withdraw does
    with web.client("undo-co") as api:
        answer = api.post(
            "/v1/consents",
            json={
                "subject_id": asked["subject_id"],
                "scopes": ["relight"],
                "evidence_sha256": "a" * 64,
            },
        )
    assert answer.status_code == 409, answer.text
    assert "withdrew" in answer.json()["detail"]
    assert len(web.guard.registry.grants_for(asked["subject_id"])) == 1


def _form_client(web: WebService, url: str) -> tuple[httpx.Client, str]:
    """A client holding the page's CSRF cookie, and the form's CSRF token."""
    client = httpx.Client(base_url=web.base_url)
    opened = client.get(url)
    assert opened.status_code == 200, opened.text
    match = re.search(r'name="csrf" value="([^"]+)"', opened.text)
    assert match is not None
    return client, match.group(1)


def test_a_decline_racing_an_accept_leaves_no_face(
    web: WebService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The photo enrolls the new subject, then the request is declined (another tab) before
    the accept lands: the accept fails and the template goes with it."""
    asked = consent_request(web, "race-co")
    path = "/consent/" + asked["url"].rsplit("/consent/", 1)[1]
    token = path.rsplit("/", 1)[1]
    requests = web.guard.registry.consent_requests
    accept = requests.accept

    def declined_meanwhile(answer: str, **kwargs: Any) -> Any:
        requests.decline(answer)
        return accept(answer, **kwargs)

    monkeypatch.setattr(requests, "accept", declined_meanwhile)
    client, csrf = _form_client(web, path)
    try:
        answer = client.post(
            f"{path}/accept",
            data={"csrf": csrf},
            files={"photo": ("me.png", sample_bytes("astronaut"), "image/png")},
        )
    finally:
        client.close()
    assert answer.status_code == 410, answer.text
    assert request_status(web, "race-co", asked["id"])["status"] == "declined"
    assert web.guard.registry.get_subject(asked["subject_id"]).template_count == 0
    assert token not in answer.text


def test_a_request_with_hidden_text_or_a_bad_scope_is_refused(web: WebService) -> None:
    good = {"requester_display_name": "Acme Photo", "new_subject": {}}
    with web.client("text-co") as api:
        for body in (
            {**good, "scopes": ["relight"], "requester_display_name": "Acme \u202eotohP"},
            {**good, "scopes": ["relight"], "new_subject": {"display_name": "\u200b"}},
            {**good, "scopes": ["Relight everything!"]},
        ):
            answer = api.post("/v1/consent-requests", json=body)
            assert answer.status_code == 422, (body, answer.text)
    assert web.guard.registry.list_subjects("text-co") == []


def test_the_persons_page_is_rate_limited(web: WebService) -> None:
    from guard.web import RedeemLimit

    assert web.app is not None
    previous = web.app.state.web_redeem_limit
    web.app.state.web_redeem_limit = RedeemLimit(rate_per_second=0.01, burst=2, name="test-me")
    try:
        with httpx.Client(base_url=web.base_url) as client:
            statuses = [
                client.get("/me").status_code,
                client.get("/me/receipts/1.json").status_code,
                client.post("/me/rotate", data={"csrf": "x"}).status_code,
                client.get("/me").status_code,
            ]
    finally:
        web.app.state.web_redeem_limit = previous
    assert statuses[:2] == [401, 401] and statuses[2:] == [429, 429], statuses


def test_a_new_persons_link_is_no_face_lookup_oracle(web: WebService) -> None:
    """With a new person's link, a registered face reads like any photo that could not be
    confirmed; the fifth failed photo locks the link (audited)."""
    enrolled_subject(web, "oracle-co", "astronaut")
    asked = consent_request(web, "oracle-co")
    path = "/consent/" + asked["url"].rsplit("/consent/", 1)[1]
    client, csrf = _form_client(web, path)

    def show(sample: SampleName) -> httpx.Response:
        name = "me.jpg" if sample == "t1" else "me.png"
        return client.post(
            f"{path}/accept", data={"csrf": csrf}, files={"photo": (name, sample_bytes(sample))}
        )

    try:
        registered = show("astronaut")
        assert registered.status_code in (403, 422), registered.text
        assert "could not confirm this photo" in registered.text
        assert "already registered" not in registered.text
        answers = [show("coffee") for _ in range(4)]
    finally:
        client.close()
    assert [a.status_code for a in answers] == [422, 422, 422, 410]
    assert "This link is locked" in answers[-1].text
    assert request_status(web, "oracle-co", asked["id"])["status"] == "locked"
    assert web.guard.registry.get_subject(asked["subject_id"]).template_count == 0
    kinds = [e["kind"] for _, e in web.guard.audit.entries(limit=100_000, tenant="oracle-co")]
    assert kinds.count("consent_request_locked") == 1


def test_the_photo_never_touches_the_disk(web: WebService, monkeypatch: pytest.MonkeyPatch) -> None:
    """A photo over 1 MiB (Starlette's spool size) is neither parsed for a bogus link nor, for
    a real one, written to a temporary file: it stays in memory."""
    rolled: list[int] = []
    rollover = tempfile.SpooledTemporaryFile.rollover

    def recorded(self: Any) -> None:
        rolled.append(1)
        rollover(self)

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", recorded)
    big = sample_bytes("astronaut") + b"\0" * (2 * 1024 * 1024)
    asked = consent_request(web, "spool-co")
    path = "/consent/" + asked["url"].rsplit("/consent/", 1)[1]
    client, csrf = _form_client(web, path)
    try:
        bogus = client.post(
            "/consent/lgr_creq_000000000000000000000000.1.x.y/accept",
            data={"csrf": csrf},
            files={"photo": ("me.png", big, "image/png")},
        )
        assert bogus.status_code == 404
        assert rolled == []
        real = client.post(
            f"{path}/accept", data={"csrf": csrf}, files={"photo": ("me.png", big, "image/png")}
        )
    finally:
        client.close()
    assert real.status_code < 500 and "Thank you" in real.text, real.text[-500:]
    assert rolled == []


def test_a_second_accept_gives_no_link_to_lock_the_person_out(web: WebService) -> None:
    """The person has their link; the integrator asks again and accepts with a matching photo
    itself: it gets no link of its own, so it cannot rotate the person's link away."""
    subject_id = enrolled_subject(web, "lockout-co", "astronaut")
    persons = web.guard.registry.management_links.issue(subject_id).token
    asked = consent_request(web, "lockout-co", subject_id=subject_id)
    path = "/consent/" + asked["url"].rsplit("/consent/", 1)[1]
    client, csrf = _form_client(web, path)
    try:
        answer = client.post(
            f"{path}/accept",
            data={"csrf": csrf},
            files={"photo": ("me.png", sample_bytes("astronaut"), "image/png")},
        )
        assert answer.status_code == 200 and "Thank you" in answer.text, answer.text[-400:]
        assert "/me/link/" not in answer.text and "already have a link" in answer.text
        assert "lg_me" not in client.cookies
        assert client.get("/me").status_code == 401
    finally:
        client.close()
    with httpx.Client(base_url=web.base_url) as person:
        assert person.get(f"/me/link/{persons}").status_code == 200


def test_a_link_from_another_site_cannot_swap_the_persons_page(web: WebService) -> None:
    """A top-level GET of someone else's management link (from any site) used to replace the
    person's cookie silently: now it asks, and only this site's form can switch."""
    registry = web.guard.registry
    mine = registry.management_links.issue(registry.create_subject("me-swap-co").id).token
    theirs = registry.management_links.issue(registry.create_subject("me-swap-co").id).token
    with httpx.Client(base_url=web.base_url, cookies={"lg_me": mine}) as browser:
        asked = browser.get(f"/me/link/{theirs}")
        assert asked.status_code == 200 and "Open another page?" in asked.text
        assert "lg_me" not in asked.headers.get("set-cookie", "")
        forged = browser.post(f"/me/link/{theirs}", data={"csrf": "x"})
        assert forged.status_code == 403 and "lg_me" not in forged.headers.get("set-cookie", "")
        csrf = re.search(r'name="csrf" value="([^"]+)"', asked.text)
        assert csrf is not None
        switched = browser.post(f"/me/link/{theirs}", data={"csrf": csrf.group(1)})
        assert switched.status_code == 200 and "Your consents" in switched.text
        assert f"lg_me={theirs}" in switched.headers.get("set-cookie", "")
    # A link followed where its own page (or none) is open asks nothing.
    for cookies in ({"lg_me": theirs}, {}):
        with httpx.Client(base_url=web.base_url, cookies=cookies) as browser:
            assert "Open another page?" not in browser.get(f"/me/link/{theirs}").text
