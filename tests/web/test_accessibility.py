"""Every page of the person's site passes axe-core with no serious or critical violation, at
phone width, and the accept flow works from the keyboard alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.web.conftest import WebService
from tests.web.flows import (
    accept_in_browser,
    check,
    confirmation_link,
    consent_request,
    enrolled_subject,
    photo_file,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

_AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(n => n.target.join(" "))
  }));
}"""


@pytest.fixture
def audited(browser: Browser, web: WebService) -> Iterator[BrowserContext]:
    """A context that may inject axe-core: the pages' CSP refuses any script not served by the
    guard, which is the point of it, so only this context bypasses it."""
    opened = browser.new_context(
        viewport={"width": 390, "height": 844}, base_url=web.base_url, bypass_csp=True
    )
    opened.set_default_timeout(20_000)
    yield opened
    opened.close()


def _serious(page: Page, axe_source: str) -> list[dict[str, Any]]:
    page.add_script_tag(content=axe_source)
    violations: list[dict[str, Any]] = page.evaluate(_AXE_RUN)
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def test_every_page_passes_axe(
    web: WebService, audited: BrowserContext, axe_source: str, tmp_path: Path
) -> None:
    page = audited.new_page()
    found: dict[str, list[dict[str, Any]]] = {}

    def audit(name: str) -> None:
        found[name] = _serious(page, axe_source)
        # Readable at phone width: nothing wider than the 390 px viewport.
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 390:
            found[name].append({"id": "wider-than-the-phone", "scroll_width": width})

    subject_id = enrolled_subject(web, "axe-co")
    asked = consent_request(web, "axe-co", subject_id=subject_id)
    page.goto(asked["url"])
    audit("consent")
    page.get_by_label("A photo of your face, on its own").set_input_files(
        photo_file(tmp_path, "tom_hanks")
    )
    page.get_by_role("button", name="Yes, I agree").click()
    expect(page.get_by_role("alert")).to_be_visible()
    audit("consent with a refused photo")
    page.get_by_role("button", name="Start the camera").click()
    page.get_by_role("button", name="Take the photo").click()
    expect(page.locator("#camera-shot")).to_be_visible()
    audit("consent with a camera photo")
    page.get_by_label("A photo of your face, on its own").set_input_files(
        photo_file(tmp_path, "astronaut")
    )
    page.get_by_role("button", name="Yes, I agree").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: you agreed")
    audit("accepted")
    assert check(web, "axe-co").status_code == 200
    page.get_by_role("link", name="Go to your page now").click()
    expect(page.locator(".usage-row")).to_have_count(1)
    audit("my page")
    page.get_by_role("button", name="Get a new link").click()
    audit("my page with a new link")
    page.get_by_role("button", name="Withdraw the consent given to Acme Photo").click()
    audit("my page after withdrawing")
    page.get_by_label("I understand this cannot be undone").check()
    page.get_by_role("button", name="Erase me").click()
    audit("erased")
    page.goto("/me")
    audit("no link")

    declined = consent_request(web, "axe-co")
    page.goto(declined["url"])
    page.get_by_role("button", name="No, I decline").click()
    audit("declined")
    page.goto(declined["url"])
    audit("used link")
    page.goto("/consent/lgr_nothing")
    audit("invalid link")

    other = consent_request(web, "axe-co")
    page.goto(accept_in_browser(page, other["url"], photo_file(tmp_path, "astronaut")))
    page.get_by_role("button", name="Switch this link off").click()
    audit("link switched off")
    assert {name: v for name, v in found.items() if v} == {}
    assert len(found) == 13


def test_the_confirmation_pages_pass_axe(
    web: WebService, audited: BrowserContext, axe_source: str
) -> None:
    page = audited.new_page()
    _, confirmation = confirmation_link(web, "axe-confirm-co")
    page.goto(f"/confirm/{confirmation}")
    assert _serious(page, axe_source) == []
    page.get_by_role("button", name="Yes, I confirm").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You confirmed")
    assert _serious(page, axe_source) == []


def test_the_accept_flow_by_keyboard_alone(web: WebService, page: Page, tmp_path: Path) -> None:
    subject_id = enrolled_subject(web, "keys-co")
    asked = consent_request(web, "keys-co", subject_id=subject_id)
    page.goto(asked["url"])

    def tab_to(element_id: str, limit: int = 10) -> list[str]:
        visited = []
        for _ in range(limit):
            page.keyboard.press("Tab")
            focused = page.evaluate("document.activeElement.id || document.activeElement.tagName")
            visited.append(focused)
            if focused == element_id:
                return visited
        raise AssertionError(f"Tab never reached #{element_id}: {visited}")

    # The order a keyboard user meets: skip link, the photo field, the camera, accept, decline.
    assert tab_to("decline") == ["A", "photo", "camera-start", "accept", "decline"]
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "photo"
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(photo_file(tmp_path, "astronaut"))
    tab_to("accept")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: you agreed")
    tab_to("go-me")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your consents")
    assert check(web, "keys-co").status_code == 200


def test_the_switch_page_passes_axe(
    web: WebService, audited: BrowserContext, axe_source: str
) -> None:
    registry = web.guard.registry
    mine = registry.management_links.issue(registry.create_subject("axe-switch-co").id).token
    theirs = registry.management_links.issue(registry.create_subject("axe-switch-co").id).token
    audited.add_cookies([{"name": "lg_me", "value": mine, "url": web.base_url}])
    page = audited.new_page()
    page.goto(f"{web.base_url}/me/link/{theirs}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Open another page?")
    assert _serious(page, axe_source) == []
