"""The person answers a consent request in Chromium: upload or camera, accept or decline, and
every misuse of the link or the form gets a clear 4xx page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import update

from guard.identity.models import ConsentRequestRow
from tests.support.live import image_part, params
from tests.web.conftest import WebService
from tests.web.flows import (
    check,
    consent_levels,
    consent_request,
    enrolled_subject,
    photo_file,
    request_status,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _grants(web: WebService, tenant: str, subject_id: str) -> list[dict[str, object]]:
    with web.client(tenant) as api:
        found = api.get("/v1/consents", params={"subject_id": subject_id})
    assert found.status_code == 200, found.text
    grants: list[dict[str, object]] = found.json()
    return grants


def test_the_person_accepts_with_their_photo(web: WebService, page: Page, tmp_path: Path) -> None:
    subject_id = enrolled_subject(web, "accept-co")
    before = check(web, "accept-co")
    assert before.status_code == 403 and before.json()["code"] == "no_consent"
    asked = consent_request(web, "accept-co", subject_id=subject_id)

    response = page.goto(asked["url"])
    assert response is not None and response.status == 200
    expect(page.get_by_role("heading", level=1)).to_contain_text("Acme Photo")
    expect(page.locator("main")).to_contain_text("Acme Ltd")
    expect(page.locator("main")).to_contain_text("change the lighting of photos of you")
    expect(page.locator("main")).to_contain_text("For the spring catalogue.")
    page.get_by_label("A photo of your face, on its own").set_input_files(
        photo_file(tmp_path, "astronaut")
    )
    page.get_by_role("button", name="Yes, I agree").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: you agreed")
    assert "/me/link/lgm_" in page.locator("#me-link").input_value()

    status = request_status(web, "accept-co", asked["id"])
    assert status["status"] == "accepted" and status["grant_id"]
    [grant] = _grants(web, "accept-co", subject_id)
    assert grant["consent_level"] == "person_confirmed" and grant["id"] == status["grant_id"]
    after = check(web, "accept-co")
    assert after.status_code == 200, after.text
    decision = after.json()["decision"]
    assert decision["verdict"] in {"allow", "allow_with_conditions"}
    assert consent_levels(decision) == {"person_confirmed"}
    with web.client("accept-co") as api:  # and the edit itself runs, stamped
        edited = api.post("/v1/edits", data=params(operation="relight"), files=image_part())
    assert edited.status_code == 200, edited.text[:300]
    kinds = [e["kind"] for _, e in web.guard.audit.entries(limit=100_000, tenant="accept-co")]
    assert {"consent_requested", "consent_granted", "consent_confirmed"} <= set(kinds)

    # The link worked once: opening it again says so, with a 4xx page.
    again = page.goto(asked["url"])
    assert again is not None and again.status == 410
    expect(page.locator("main")).to_contain_text("already used")


def test_someone_elses_photo_is_refused(web: WebService, page: Page, tmp_path: Path) -> None:
    subject_id = enrolled_subject(web, "other-co")
    asked = consent_request(web, "other-co", subject_id=subject_id)
    page.goto(asked["url"])
    page.get_by_label("A photo of your face, on its own").set_input_files(
        photo_file(tmp_path, "tom_hanks")
    )
    with page.expect_response(lambda r: r.url.endswith("/accept")) as answer:
        page.get_by_role("button", name="Yes, I agree").click()
    assert answer.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("does not match")
    assert request_status(web, "other-co", asked["id"])["status"] == "pending"
    assert _grants(web, "other-co", subject_id) == []
    assert check(web, "other-co").json()["code"] == "no_consent"


def test_a_new_person_confirms_with_the_camera(web: WebService, page: Page) -> None:
    asked = consent_request(web, "camera-co", scopes=["relight", "background_blur"])
    page.goto(asked["url"])
    page.get_by_role("button", name="Start the camera").click()
    page.get_by_role("button", name="Take the photo").click()
    expect(page.get_by_role("status")).to_contain_text("Photo taken")
    page.get_by_role("button", name="Yes, I agree").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: you agreed")
    subject = web.guard.registry.get_subject(asked["subject_id"])
    assert subject.template_count == 1  # enrolled from the camera frame; no photo kept
    after = check(web, "camera-co")
    assert after.status_code == 200, after.text
    assert consent_levels(after.json()["decision"]) == {"person_confirmed"}


def test_the_person_declines(web: WebService, page: Page) -> None:
    asked = consent_request(web, "decline-co")
    page.goto(asked["url"])
    page.get_by_role("button", name="No, I decline").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You declined")
    status = request_status(web, "decline-co", asked["id"])
    assert status["status"] == "declined" and status["grant_id"] is None
    again = page.goto(asked["url"])
    assert again is not None and again.status == 410


def test_an_expired_link_gets_a_clear_page(web: WebService, page: Page) -> None:
    asked = consent_request(web, "expiry-co")
    with web.guard.db.transaction() as session:
        session.execute(
            update(ConsentRequestRow)
            .where(ConsentRequestRow.id == asked["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    response = page.goto(asked["url"])
    assert response is not None and response.status == 410
    expect(page.get_by_role("heading", level=1)).to_have_text("This link no longer works")
    expect(page.locator("main")).to_contain_text("expired")
    assert request_status(web, "expiry-co", asked["id"])["status"] == "expired"


@pytest.mark.parametrize("where", ["secret", "tag", "id"])
def test_a_tampered_link_gets_a_clear_page(web: WebService, page: Page, where: str) -> None:
    asked = consent_request(web, "tamper-co")
    base, token = asked["url"].split("/consent/")
    prefix, expiry, secret, tag = token.split(".")
    flip = {"0": "1"}.get
    tampered = {
        "secret": f"{prefix}.{expiry}.{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}.{tag}",
        "tag": f"{prefix}.{expiry}.{secret}.{tag[:-1]}{flip(tag[-1], '0')}",
        "id": f"{prefix[:-1]}{flip(prefix[-1], '0')}.{expiry}.{secret}.{tag}",
    }[where]
    response = page.goto(f"{base}/consent/{tampered}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("This link is not valid")
    assert "Traceback" not in page.content()
    assert request_status(web, "tamper-co", asked["id"])["status"] == "pending"


def test_a_form_without_its_csrf_token_is_refused(web: WebService, page: Page) -> None:
    asked = consent_request(web, "csrf-co")
    page.goto(asked["url"])
    page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")
    with page.expect_response(lambda r: r.url.endswith("/decline")) as answer:
        page.get_by_role("button", name="No, I decline").click()
    assert answer.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("not sent from this page")
    assert request_status(web, "csrf-co", asked["id"])["status"] == "pending"


def test_another_tenants_request_is_nobody(web: WebService) -> None:
    asked = consent_request(web, "owner-co")
    with web.client("nosy-co") as api:
        found = api.get(f"/v1/consent-requests/{asked['id']}")
        missing = api.get("/v1/consent-requests/creq_000000000000000000000000")
        subject = api.post(
            "/v1/consent-requests",
            json={
                "subject_id": asked["subject_id"],
                "requester_display_name": "Nosy",
                "scopes": ["relight"],
            },
        )
    assert found.status_code == missing.status_code == subject.status_code == 404
    assert found.json()["detail"].replace(asked["id"], "X") == missing.json()["detail"].replace(
        "creq_000000000000000000000000", "X"
    )


def test_token_lookups_are_rate_limited(web: WebService, page: Page) -> None:
    from guard.web import RedeemLimit

    asked = consent_request(web, "rate-co")
    assert web.app is not None
    previous = web.app.state.web_redeem_limit
    web.app.state.web_redeem_limit = RedeemLimit(rate_per_second=0.01, burst=2, name="test")
    try:
        statuses = [page.goto(asked["url"]).status for _ in range(3)]  # type: ignore[union-attr]
    finally:
        web.app.state.web_redeem_limit = previous
    assert statuses == [200, 200, 429]
    expect(page.get_by_role("heading", level=1)).to_have_text("Too many attempts")


def test_pages_carry_a_strict_csp_and_strict_cookies(web: WebService, page: Page) -> None:
    asked = consent_request(web, "headers-co")
    response = page.goto(asked["url"])
    assert response is not None
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "http" not in csp
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert page.locator("script:not([src])").count() == 0
    scripts = page.locator("script[src]").evaluate_all("s => s.map(e => e.src)")
    sheets = page.locator("link[rel=stylesheet]").evaluate_all("s => s.map(e => e.href)")
    assert all(src.startswith(web.base_url + "/web-static/") for src in scripts + sheets)
    # An inline script injected into the page does not run: the CSP refuses it.
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.injected = true'; document.body.append(s); }"
    )
    assert page.evaluate("window.injected === undefined")
    [csrf] = [c for c in page.context.cookies() if c["name"] == "lg_csrf"]
    assert csrf["httpOnly"] and csrf["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""


def test_a_bad_consent_request_changes_nothing(web: WebService) -> None:
    good = {"requester_display_name": "Acme Photo", "scopes": ["relight"]}
    bad = [
        ({**good, "new_subject": {}, "scopes": ["  "]}, 400),
        ({**good, "new_subject": {}, "message": "hello\u0000"}, 400),
        ({**good, "new_subject": {}, "requester_display_name": "   "}, 400),
        ({**good, "new_subject": {}, "requester": "other-co/app"}, 403),
        ({**good, "new_subject": {}, "requester": "bad-co/../x"}, 400),
        ({**good, "new_subject": {}, "duration_days": 0}, 422),
        ({**good, "new_subject": {}, "subject_id": "sub_x"}, 422),
        (good, 422),
    ]
    with web.client("bad-co") as api:
        for body, status in bad:
            answer = api.post("/v1/consent-requests", json=body)
            assert answer.status_code == status, (body, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
    assert web.guard.registry.list_subjects("bad-co") == []
    entries = web.guard.audit.entries(limit=100_000, tenant="bad-co")
    assert [entry for _, entry in entries if entry.get("tenant") == "bad-co"] == []


def test_a_photo_without_exactly_one_face_agrees_to_nothing(
    web: WebService, page: Page, tmp_path: Path
) -> None:
    asked = consent_request(web, "faces-co")
    page.goto(asked["url"])
    attempts = [
        (None, 400, "Choose a photo of yourself"),
        (photo_file(tmp_path, "coffee"), 422, "could not find a face"),
        (photo_file(tmp_path, "t1"), 422, "shows 6 faces"),
    ]
    for photo, status, message in attempts:
        if photo is not None:
            page.get_by_label("A photo of your face, on its own").set_input_files(photo)
        with page.expect_response(lambda r: r.url.endswith("/accept")) as answer:
            page.get_by_role("button", name="Yes, I agree").click()
        assert answer.value.status == status
        expect(page.get_by_role("alert")).to_contain_text(message)
    assert request_status(web, "faces-co", asked["id"])["status"] == "pending"
    assert web.guard.registry.get_subject(asked["subject_id"]).template_count == 0
