"""``/confirm/{token}``: the person confirms an integrator's grant with the one-time link the
integrator asked for (``POST /v1/consents/{id}/confirmation``), in Chromium; the link works
once, a tampered one confirms nothing, and the form needs its CSRF token."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page

from tests.web.conftest import WebService
from tests.web.flows import check, confirmation_link, consent_levels

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _levels(web: WebService, tenant: str) -> set[str]:
    answer = check(web, tenant)
    assert answer.status_code == 200, answer.text
    return consent_levels(answer.json()["decision"])


def test_the_person_confirms_an_integrators_grant_once(web: WebService, page: Page) -> None:
    _, token = confirmation_link(web, "confirm-co")
    assert _levels(web, "confirm-co") == {"attested"}
    page.goto(f"{web.base_url}/confirm/{token}")
    page.get_by_role("heading", name="Confirm your consent").wait_for()
    assert "relight" in page.content()
    page.get_by_role("button", name="Yes, I confirm").click()
    page.get_by_role("heading", name="You confirmed").wait_for()
    assert _levels(web, "confirm-co") == {"person_confirmed"}
    again = page.goto(f"{web.base_url}/confirm/{token}")
    assert again is not None and again.status == 400
    assert "not valid" in page.content()


def test_a_tampered_link_or_a_form_without_csrf_confirms_nothing(web: WebService) -> None:
    _, token = confirmation_link(web, "confirm-forged-co")
    prefix, expiry, secret, tag = token.split(".")
    swapped = "B" if secret[-1] == "A" else "A"
    with httpx.Client(base_url=web.base_url) as client:
        forged = client.get(f"/confirm/{prefix}.{expiry}.{secret[:-1]}{swapped}.{tag}")
        assert forged.status_code == 400 and "not valid" in forged.text
        assert "Traceback" not in forged.text
        shown = client.get(f"/confirm/{token}")
        assert shown.status_code == 200
        refused = client.post(f"/confirm/{token}", data={"csrf": "x"})
        assert refused.status_code == 403
    assert _levels(web, "confirm-forged-co") == {"attested"}
