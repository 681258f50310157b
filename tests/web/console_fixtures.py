"""Shared pieces of the console's browser tests: a seeded history in the package's live
service, and browser contexts signed in to the console.

``console_history`` seeds two tenants of its own (``CONSOLE_A``, ``CONSOLE_B``) once per
service: pytest makes a separate fixture of it in each module that imports it, so the seeded
history is also kept per service here, and a second module gets the same one rather than
appending the same tenants' decisions twice (which would double every expected count).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

from tests.support.history import SeededHistory, SeededTenant, seed_history
from tests.support.live import image_part, params
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


@pytest.fixture
def history(console_history: SeededHistory) -> SeededHistory:
    return console_history


@pytest.fixture
def pages(browser: Browser, web: WebService) -> Iterator[list[Page]]:
    """The pages a test opened with :func:`signed_in_page`; their contexts close after it."""
    opened: list[Page] = []
    yield opened
    for page in opened:
        page.context.close()


def signed_in_page(
    browser: Browser, web: WebService, pages: list[Page], token: str, *, bypass_csp: bool = False
) -> Page:
    """A page of a 1280x800 context of its own, signed in with ``token`` (kept in ``pages``)."""
    context = browser.new_context(viewport=DESKTOP, base_url=web.base_url, bypass_csp=bypass_csp)
    context.set_default_timeout(30_000)
    page = context.new_page()
    pages.append(page)
    sign_in(page, token)
    return page


def six_face_decision(web: WebService, tenant: SeededTenant) -> str:
    """The seeded decision on insightface's t1.jpg (six real faces)."""
    log = web.guard.audit
    for decision_id in tenant.real_decision_ids:
        if len(log.entry(log.index_of_decision(decision_id))["faces"]) == 6:
            return decision_id
    raise AssertionError("the seeded t1 check did not record six faces")


def stamped_image(web: WebService, tenant: str) -> bytes:
    """A real photo stamped by the service for ``tenant`` (a decision of that tenant's)."""
    with web.client(tenant) as api:
        answer = api.post(
            "/v1/stamps",
            data=params(generator="lgc-gen", output_format="png"),
            files=image_part("coffee"),
        )
    assert answer.status_code == 200, answer.text
    return base64.b64decode(answer.json()["image"]["data_base64"])
