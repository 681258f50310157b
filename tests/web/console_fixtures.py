"""Shared pieces of the console's browser tests: a seeded history in the package's live
service, and browser contexts signed in to the console.

``console_history`` seeds two tenants of its own (``CONSOLE_A``, ``CONSOLE_B``) once per
service: pytest makes a separate fixture of it in each module that imports it, so the seeded
history is also kept per service here, and a second module gets the same one rather than
appending the same tenants' decisions twice (which would double every expected count).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

from tests.support.history import SeededHistory, seed_history
from tests.web.conftest import WebService

CONSOLE_A, CONSOLE_B = "lgd-alpha-co", "lgd-beta-co"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
TABLET: ViewportSize = {"width": 768, "height": 1024}

_SEEDED: dict[int, SeededHistory] = {}


@pytest.fixture(scope="package")
def console_history(web: WebService) -> SeededHistory:
    """Tenants ``CONSOLE_A`` and ``CONSOLE_B``: 1,200 decisions each over 5 days, with their
    registries, auditor and admin tokens and expected counts (tests/support/history.py)."""
    if id(web) not in _SEEDED:
        _SEEDED[id(web)] = seed_history(
            web, tenants=(CONSOLE_A, CONSOLE_B), decisions_per_tenant=1200, days=5
        )
    return _SEEDED[id(web)]


def sign_in(page: Page, token: str) -> None:
    """Sign in through the form, as a person would; ends on the overview."""
    page.goto("/console/sign-in")
    page.get_by_label("API key").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console")


@contextmanager
def console_context(
    browser: Browser,
    web: WebService,
    token: str | None = None,
    *,
    viewport: ViewportSize | None = None,
    bypass_csp: bool = False,
) -> Iterator[BrowserContext]:
    """A context of its own (1280x800 unless told), signed in with ``token`` if given.
    ``bypass_csp`` only for injecting axe-core."""
    opened = browser.new_context(
        viewport=viewport or DESKTOP,
        base_url=web.base_url,
        bypass_csp=bypass_csp,
        accept_downloads=True,
    )
    opened.set_default_timeout(30_000)
    try:
        if token is not None:
            sign_in(opened.new_page(), token)
        yield opened
    finally:
        opened.close()
