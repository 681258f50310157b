"""The person's own page: their grants, withdrawing one, the decisions that matched them with
receipts, their management link (rotate, switch off) and erasing themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from guard.errors import NotFound
from tests.support.live import image_part, params
from tests.web.conftest import WebService
from tests.web.flows import accept_in_browser, check, consent_request, photo_file

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _kinds(web: WebService, tenant: str) -> list[str]:
    return [e["kind"] for _, e in web.guard.audit.entries(limit=100_000, tenant=tenant)]


def test_withdraw_and_usage(web: WebService, page: Page, tmp_path: Path) -> None:
    asked = consent_request(web, "me-co")
    accept_in_browser(page, asked["url"], photo_file(tmp_path, "astronaut"))
    allowed = check(web, "me-co")
    assert allowed.status_code == 200, allowed.text

    page.get_by_role("link", name="Go to your page now").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your consents")
    grant = page.locator(".grant")
    expect(grant).to_have_count(1)
    expect(grant).to_contain_text("Acme Photo (Acme Ltd)")
    expect(grant).to_contain_text("change the lighting of photos of you")
    expect(grant).to_contain_text("You confirmed it yourself")
    rows = page.locator(".usage-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Acme Photo")
    expect(rows.first).to_contain_text("relight")
    expect(rows.first).to_contain_text("allowed")
    href = rows.first.get_by_role("link").get_attribute("href")
    assert href is not None
    receipt = page.request.get(href)
    assert receipt.status == 200
    index = int(href.rsplit("/", 1)[1].removesuffix(".json"))
    # The audit log's own receipt for that entry (nothing was appended in between).
    assert json.loads(receipt.body()) == web.guard.audit.receipt(index).to_dict()
    assert web.guard.audit.entry(index)["kind"] == "decision"

    page.get_by_role("button", name="Withdraw the consent given to Acme Photo").click()
    expect(page.get_by_role("status")).to_contain_text("withdrawn")
    expect(grant).to_contain_text("withdrawn")
    denied = check(web, "me-co")
    assert denied.status_code == 403 and denied.json()["code"] == "consent_revoked"
    with web.client("me-co") as api:
        edit = api.post("/v1/edits", data=params(operation="relight"), files=image_part())
    assert edit.status_code == 403 and edit.json()["code"] == "consent_revoked"
    page.reload()
    expect(rows).to_have_count(3)  # the allowed check, then the refused check and edit
    expect(rows.first).to_contain_text("refused")
    assert "consent_withdrawn" in _kinds(web, "me-co")


def test_a_receipt_or_grant_of_someone_else_is_nobody(
    web: WebService, browser: Browser, page: Page, tmp_path: Path
) -> None:
    mine = consent_request(web, "mine-co")
    accept_in_browser(page, mine["url"], photo_file(tmp_path, "astronaut"))
    other = browser.new_context()
    try:
        theirs = consent_request(web, "theirs-co")
        accept_in_browser(other.new_page(), theirs["url"], photo_file(tmp_path, "astronaut"))
    finally:
        other.close()
    their_check = check(web, "theirs-co")
    assert their_check.status_code == 200
    their_index = web.guard.audit.size() - 1
    their_grant = web.guard.registry.grants_for(theirs["subject_id"])[0].id

    page.goto("/me")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    assert csrf
    withdraw = page.request.post("/me/withdraw", form={"csrf": csrf, "grant_id": their_grant})
    assert withdraw.status == 404
    assert "no such consent" in withdraw.text()
    assert web.guard.registry.get_grant(their_grant).revoked_at is None
    assert page.request.get(f"/me/receipts/{their_index}.json").status == 404
    assert page.request.get("/me/receipts/999999.json").status == 404


def test_the_link_rotates_and_switches_off(
    web: WebService, browser: Browser, page: Page, tmp_path: Path
) -> None:
    asked = consent_request(web, "link-co")
    first_link = accept_in_browser(page, asked["url"], photo_file(tmp_path, "astronaut"))
    fresh = browser.new_context()
    try:
        elsewhere = fresh.new_page()
        opened = elsewhere.goto(first_link)
        assert opened is not None and opened.status == 200
        expect(elsewhere.get_by_role("heading", level=1)).to_have_text("Your consents")
        elsewhere.get_by_role("button", name="Get a new link").click()
        new_link = elsewhere.locator("#new-link").input_value()
        assert new_link != first_link and "/me/link/lgm_" in new_link
        assert elsewhere.goto(first_link).status == 404  # type: ignore[union-attr]
        assert elsewhere.goto(new_link).status == 200  # type: ignore[union-attr]
        elsewhere.get_by_role("button", name="Switch this link off").click()
        expect(elsewhere.get_by_role("heading", level=1)).to_have_text("This link is switched off")
        assert elsewhere.goto(new_link).status == 404  # type: ignore[union-attr]
        no_cookie = elsewhere.goto(new_link.split("/me/")[0] + "/me")
        assert no_cookie is not None and no_cookie.status == 401
    finally:
        fresh.close()
    kinds = _kinds(web, "link-co")
    assert {"management_link_issued", "management_link_rotated", "management_link_revoked"} <= set(
        kinds
    )


def test_erase_me(web: WebService, page: Page, tmp_path: Path) -> None:
    asked = consent_request(web, "erase-co")
    me_link = accept_in_browser(page, asked["url"], photo_file(tmp_path, "astronaut"))
    subject_id = asked["subject_id"]
    template_ids = web.guard.registry.template_ids(subject_id)
    assert len(template_ids) == 1
    page.goto(me_link)
    page.get_by_role("button", name="Erase me").click()  # the box is not ticked yet
    expect(page.get_by_role("heading", level=1)).to_have_text("Your consents")
    page.get_by_label("I understand this cannot be undone").check()
    page.get_by_role("button", name="Erase me").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You were erased")
    main = page.locator("main")
    expect(main).to_contain_text("Removed: 1 face template")
    expect(main).to_contain_text("What remains, and why")
    expect(main).to_contain_text("keyed code")
    with pytest.raises(NotFound):
        web.guard.registry.get_subject(subject_id)
    assert web.guard.registry.template_ids(subject_id) == []
    assert not set(template_ids) & web.guard.registry.indexed_template_ids()
    assert "subject_erased_by_person" in _kinds(web, "erase-co")
    assert check(web, "erase-co").json()["code"] == "no_consent"
    assert page.goto(me_link).status == 404  # type: ignore[union-attr]
