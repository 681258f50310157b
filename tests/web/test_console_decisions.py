"""The console's sign-in, overview, decisions table, CSV and audit export in real Chromium,
against the live service on PostgreSQL with a seeded history of two tenants of our own
(tests/web/console_fixtures.py): every count checked against the counts the seeding made (never
read back from the index the pages query), tenant isolation, every filter, paging, the CSV's
formula neutralising, the export's progress and line count, axe-core, tablet width and the
keyboard alone."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from guard.api import ApiKeyStore, Role
from guard.audit.batch import PendingEntry, append_batch
from guard.audit.export import verify_export
from guard.audit.log import audit_verifier
from guard.audit.search import AuditSearch, DecisionFilter
from guard.web.console.decisions import CSV_COLUMNS, csv_cell
from tests.support.history import SeededHistory, SeededTenant
from tests.web.conftest import WebService
from tests.web.console_fixtures import (
    CONSOLE_A,
    CONSOLE_B,
    TABLET,
    console_context,
    console_history,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

__all__ = ["console_history"]  # the fixture, imported for pytest

_AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map(n => n.target.join(" "))}));
}"""


@pytest.fixture
def alpha(console_history: SeededHistory) -> SeededTenant:
    return console_history.tenant(CONSOLE_A)


@pytest.fixture
def signed_in(browser: Browser, web: WebService, alpha: SeededTenant) -> Iterator[BrowserContext]:
    """A 1280x800 context signed in with tenant A's auditor key."""
    with console_context(browser, web, alpha.auditor_token) as opened:
        yield opened


def _count(page: Page) -> int:
    text = page.locator("#decision-count strong").inner_text()
    found = re.fullmatch(r"([\d,]+) decisions?", text)
    assert found, text
    return int(found.group(1).replace(",", ""))


def _csv(context: BrowserContext, **filters: str) -> list[dict[str, str]]:
    answer = context.request.get("/console/decisions.csv?" + urlencode(filters))
    assert answer.status == 200, answer.text()
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(answer.text())))
    assert tuple(rows[0]) == CSV_COLUMNS
    # A complete file says so in its last line, with its count (a cut one would not).
    assert rows[-1] == [f"# end of export: {len(rows) - 2} decisions (complete)"]
    return [dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:-1]]


def _ids_of(web: WebService, tenant: str) -> set[str]:
    search = AuditSearch(web.guard.db)
    return {row.decision_id for row in search.every_decision(DecisionFilter(tenant=tenant))}


# --- sign-in, sign-out, keys ---------------------------------------------------------------


def test_sign_in_and_out_and_the_old_cookie_opens_nothing(
    browser: Browser, web: WebService, alpha: SeededTenant
) -> None:
    with console_context(browser, web, alpha.auditor_token) as context:
        page = context.pages[0]
        expect(page.locator(".who")).to_contain_text(CONSOLE_A)
        cookie = next(c for c in context.cookies() if c["name"] == "lg_console")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()
        # The same cookie, replayed in a fresh browser, opens nothing.
        with console_context(browser, web) as replay:
            replay.add_cookies([cookie])
            again = replay.new_page()
            again.goto("/console/decisions")
            assert again.url.endswith("/console/sign-in")
            assert replay.request.get("/console/decisions.csv").status == 401


def test_an_integrator_key_is_refused(browser: Browser, web: WebService) -> None:
    integrator = web.token(CONSOLE_A, Role.INTEGRATOR)
    with console_context(browser, web) as context:
        page = context.new_page()
        page.goto("/console/sign-in")
        page.get_by_label("API key").fill(integrator)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#sign-in-error")).to_contain_text("cannot open the console")
        page.goto("/console")
        assert page.url.endswith("/console/sign-in")


def test_a_revoked_auditor_keys_session_stops(browser: Browser, web: WebService) -> None:
    keys = ApiKeyStore(web.guard.db)
    issued = keys.create(tenant=CONSOLE_A, role=Role.AUDITOR, requester=f"{CONSOLE_A}/revoked")
    with console_context(browser, web, issued.token) as context:
        page = context.pages[0]
        page.goto("/console/decisions")
        expect(page.get_by_role("heading", name="Decisions")).to_be_visible()
        keys.revoke(issued.key.id)
        page.goto("/console/decisions")
        assert page.url.endswith("/console/sign-in")


# --- the overview --------------------------------------------------------------------------


def test_the_overview_counts_tenant_a_only(
    signed_in: BrowserContext, alpha: SeededTenant, console_history: SeededHistory
) -> None:
    page = signed_in.pages[0]
    page.goto("/console?days=7")
    expected = alpha.expected
    assert page.locator("#total-decisions").inner_text() == f"{expected.total:,}"
    for verdict in ("allow", "allow_with_conditions", "deny"):
        shown = page.locator(f"#total-{verdict}").inner_text()
        assert shown == f"{expected.by_verdict.get(verdict, 0):,}", verdict
    rate = 100 * expected.by_verdict.get("deny", 0) / expected.total
    assert page.locator("#denial-rate").inner_text() == f"{rate:.1f} %"
    # The charts are images with titles, and their numbers are in tables.
    for ident in ("by-verdict", "by-reason"):
        chart = page.locator(f"svg[aria-labelledby^='{ident}-title']")
        expect(chart).to_have_attribute("role", "img")
    tables = page.locator("details table")
    assert tables.count() == 2
    page.locator("details summary").first.click()
    day = max(expected.by_day)
    row = page.locator("details table").first.locator(
        "tr", has=page.locator(f"th:text-is('{day}')")
    )
    assert row.locator("td").last.inner_text() == str(expected.by_day[day])
    # The reason chart's table: a decision counts once under each of its codes.
    reason_total = sum(expected.by_reason.values())
    legend = page.locator("#by-reason-heading ~ figure .legend li")
    assert sum(int(t.rsplit(": ", 1)[1].replace(",", "")) for t in legend.all_inner_texts()) == (
        reason_total
    )
    # Top requesters by name, linking to their decisions.
    top = page.locator("#top-requesters tbody tr").first
    name = top.locator("a").inner_text()
    requester = name.split(" (")[0]
    assert requester in alpha.requesters
    assert top.locator("td").last.inner_text() == f"{expected.by_requester[requester]:,}"
    top.locator("a").click()
    assert _count(page) == expected.by_requester[requester]
    # The audit log's state.
    page.goto("/console")
    expect(page.locator("#audit-size")).not_to_have_text("0")
    expect(page.locator("#checkpoint-age")).to_contain_text("ago")
    expect(page.locator("#witness-status")).to_contain_text("No witness is configured")
    assert CONSOLE_B not in page.content()


def test_the_overview_refuses_a_bad_period(signed_in: BrowserContext) -> None:
    page = signed_in.pages[0]
    for query in ("days=0", "days=91", "days=seven", "days=1&days=2", "colour=red"):
        answer = page.goto(f"/console?{query}")
        assert answer is not None and answer.status == 400, query
        expect(page.locator(".problem")).to_be_visible()
    assert page.goto("/console?days=1") is not None
    expect(page.locator("#by-verdict-heading")).to_contain_text("per hour")


# --- the decisions table and its filters ---------------------------------------------------


def test_each_filter_gives_the_expected_rows(
    signed_in: BrowserContext, alpha: SeededTenant, console_history: SeededHistory
) -> None:
    page = signed_in.pages[0]
    expected = alpha.expected
    older, _ = console_history.policy_versions
    day = sorted(expected.by_day)[1]
    cases: list[tuple[dict[str, str], int, str, str]] = [
        ({}, expected.total, "", ""),
        ({"verdict": "deny"}, expected.by_verdict["deny"], "verdict", "deny"),
        ({"reason": "no_consent"}, expected.by_reason["no_consent"], "reason_codes", ""),
        ({"operation": "restyle"}, expected.by_operation["restyle"], "operation", "restyle"),
        (
            {"requester": "mobile"},
            expected.by_requester[f"{CONSOLE_A}/mobile"],
            "requester",
            f"{CONSOLE_A}/mobile",
        ),
        ({"policy": older}, expected.by_policy_version[older], "policy_version", older),
        (
            {"policy_id": console_history.policy_id},
            expected.total,
            "policy_id",
            console_history.policy_id,
        ),
        ({"since": day, "until": day}, expected.by_day[day], "", ""),
        ({"requester": "nobody-by-this-name"}, 0, "", ""),
    ]
    for filters, count, column, value in cases:
        page.goto("/console/decisions?" + urlencode(filters))
        assert _count(page) == count, filters
        rows = _csv(signed_in, **filters)
        assert len(rows) == count, filters
        if column == "reason_codes":
            assert all("no_consent" in r["reason_codes"].split(";") for r in rows)
        elif column:
            assert {r[column] for r in rows} == {value}, filters
        if "since" in filters:
            assert {r["time"][:10] for r in rows} == {day}
        if count == 0:
            expect(page.locator(".notice")).to_contain_text("No decision matches")
    # The caption says what is shown.
    page.goto("/console/decisions?verdict=deny&operation=relight")
    expect(page.locator("#decisions caption")).to_contain_text("verdict deny")
    expect(page.locator("#decisions caption")).to_contain_text("operation relight")


def test_paging_through_a_filter_shows_every_row_once(
    signed_in: BrowserContext, alpha: SeededTenant
) -> None:
    page = signed_in.pages[0]
    want = alpha.expected.by_verdict["deny"]
    page.goto("/console/decisions?verdict=deny")
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        seen += page.locator("#decisions a.decision-link").all_inner_texts()
        following = page.locator("#next-page")
        if following.count() == 0:
            break
        href = following.get_attribute("href") or ""
        assert "verdict=deny" in href and "after=" in href
        following.click()
        expect(page.locator("#first-page")).to_be_visible()
    assert len(seen) == len(set(seen)) == want
    assert pages == -(-want // 50)
    assert set(seen) == {r["decision_id"] for r in _csv(signed_in, verdict="deny")}
    page.locator("#first-page").click()
    assert "after=" not in page.url and "verdict=deny" in page.url


def test_bad_parameters_are_400_pages(signed_in: BrowserContext) -> None:
    page = signed_in.pages[0]
    for query, words in (
        ("verdict=maybe", "'verdict' is one of"),
        ("reason=because", "'reason' is a reason code"),
        ("operation=Not%20One", "'operation' is an operation name"),
        ("since=2026-13-01", "'since' is a date"),
        ("until=yesterday", "'until' is a date"),
        ("since=2026-12-05&until=2026-12-01", "'since' must come before 'until'"),
        ("after=not-a-cursor", "page cursor"),
        ("sort=time", "unknown filter"),
        ("verdict=deny&verdict=allow", "give 'verdict' once"),
        ("policy=" + "9" * 65, "at most 64"),
        ("requester_ref=abc", "64 hexadecimal digits"),
    ):
        for path in ("/console/decisions", "/console/decisions.csv"):
            answer = page.goto(f"{path}?{query}")
            assert answer is not None and answer.status == 400, (path, query)
            expect(page.locator(".problem")).to_contain_text(words)


def test_tenant_a_never_sees_tenant_b(
    signed_in: BrowserContext, web: WebService, alpha: SeededTenant
) -> None:
    page = signed_in.pages[0]
    b_ids = _ids_of(web, CONSOLE_B)
    assert b_ids
    rows = _csv(signed_in)
    ids = {r["decision_id"] for r in rows}
    assert len(rows) == alpha.expected.total
    assert ids == _ids_of(web, CONSOLE_A)
    assert not ids & b_ids
    page.goto("/console/decisions")
    shown = set(page.locator("#decisions a.decision-link").all_inner_texts())
    assert shown and shown <= ids
    # Asking for B as A is refused, not quietly answered with A's rows.
    for path in ("/console/decisions", "/console/decisions.csv"):
        answer = page.goto(f"{path}?tenant={CONSOLE_B}")
        assert answer is not None and answer.status == 403
    answer = page.goto(f"/console/decisions?tenant={CONSOLE_A}")
    assert answer is not None and answer.status == 200


def test_the_operator_sees_every_tenant_without_names(
    browser: Browser, web: WebService, console_history: SeededHistory, tmp_path: Path
) -> None:
    operator = web.token("", Role.OPERATOR)
    with console_context(browser, web, operator) as context:
        page = context.pages[0]
        page.goto(f"/console/decisions?tenant={CONSOLE_B}")
        assert _count(page) == console_history.tenant(CONSOLE_B).expected.total
        expect(page.locator("#decisions tbody tr").first).to_contain_text("requester ref")
        answer = page.goto("/console/decisions?requester=web")
        assert answer is not None and answer.status == 400
        # A top requester links to its decisions by tenant and keyed reference.
        page.goto("/console")
        top = page.locator("#top-requesters tbody tr").first
        shown = int(top.locator("td").last.inner_text().replace(",", ""))
        top.locator("a").click()
        assert "requester_ref=" in page.url
        assert _count(page) == shown
        # The whole log, in the format `guard audit verify-export` checks.
        saved = tmp_path / "all.jsonl"
        answer = context.request.get("/console/export/audit.jsonl")
        saved.write_bytes(answer.body())
        report = verify_export(saved, audit_verifier(web.guard.settings))
        assert report.ok, report.problems
        assert report.entries == int(answer.headers["x-entry-count"])


# --- the CSV -------------------------------------------------------------------------------


def test_csv_cells_cannot_become_formulas() -> None:
    for risky in ("=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(risky) == "'" + risky
    assert csv_cell("relight") == "relight"
    assert csv_cell(None) == ""


def test_the_csv_neutralises_a_formula_in_the_log(browser: Browser, web: WebService) -> None:
    tenant = "lgd-formula-co"
    hasher = web.guard.keys.hasher().for_tenant(tenant)
    entry: dict[str, Any] = {
        "v": 1,
        "kind": "decision",
        "time": datetime.now(UTC).isoformat(),
        "tenant": tenant,
        "requester": hasher.ref("requester", f"{tenant}/web"),
        "operation": "-2-3",
        "stage": "input",
        "decision_id": "dec_" + "f" * 32,
        "verdict": "deny",
        "reason_codes": ["no_consent"],
        "policy": {"id": '=HYPERLINK("http://x")', "version": "@SUM(1)"},
    }
    with web.guard.db.transaction() as session:
        append_batch(session, web.guard.audit.current_signer(), [PendingEntry.of(entry)])
    with console_context(browser, web, web.token(tenant, Role.AUDITOR)) as context:
        answer = context.request.get("/console/decisions.csv")
        disposition = answer.headers["content-disposition"]
        assert re.fullmatch(
            rf'attachment; filename="decisions-{tenant}-\d{{4}}-\d\d-\d\d\.csv"', disposition
        )
        (row,) = _csv(context)
        assert row["operation"] == "'-2-3"
        assert row["policy_id"] == '\'=HYPERLINK("http://x")'
        assert row["policy_version"] == "'@SUM(1)"
        assert row["decision_id"] == "dec_" + "f" * 32


# --- the audit export ----------------------------------------------------------------------


def test_the_audit_export_downloads_with_progress(
    signed_in: BrowserContext, web: WebService, tmp_path: Path
) -> None:
    page = signed_in.pages[0]
    page.goto("/console/export")
    link = page.get_by_role("link", name="Download the audit log (JSON Lines)")
    assert link.get_attribute("href") == "/console/export/audit.jsonl"
    with page.expect_download() as downloading:
        link.click()
    saved = tmp_path / "audit.jsonl"
    downloading.value.save_as(saved)
    status = page.locator("#export-status")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status).to_contain_text("Downloaded")
    shown = re.search(r"Downloaded ([\d,]+) of ([\d,]+) entries", status.inner_text())
    assert shown and shown.group(1) == shown.group(2)
    lines = [json.loads(t) for t in saved.read_text().splitlines()]
    entries, closing = lines[:-1], lines[-1]
    assert set(closing) == {"latest_checkpoint"}
    assert len(entries) == int(shown.group(1).replace(",", ""))
    assert int(page.locator("#export-bar").get_attribute("value") or 0) == len(entries)
    assert all(e["entry"].get("tenant", CONSOLE_A) == CONSOLE_A for e in entries)
    assert [e["index"] for e in entries] == sorted({e["index"] for e in entries})
    assert {"index", "entry", "leaf_hash", "checkpoint"} == set(entries[0])
    decisions = {e["entry"]["decision_id"] for e in entries if e["entry"]["kind"] == "decision"}
    assert decisions >= _ids_of(web, CONSOLE_A)

    # An export that does not end with its checkpoint (cut short) is said so, not saved.
    def cut(route: Route) -> None:
        response = route.fetch()
        body = response.text().splitlines(keepends=True)
        route.fulfill(response=response, body="".join(body[:-1]))

    page.route("**/audit.jsonl", cut)
    link.click()
    expect(status).to_contain_text("The export is incomplete")
    page.unroute("**/audit.jsonl")
    # The header says how many entry lines follow (the plain link's download, without JS).
    answer = signed_in.request.get("/console/export/audit.jsonl")
    body = answer.text().splitlines()
    assert int(answer.headers["x-entry-count"]) == len(body) - 1
    assert 'filename="audit-' in answer.headers["content-disposition"]


# --- accessibility, width, keyboard --------------------------------------------------------


def test_the_pages_pass_axe_and_fit_a_tablet(
    browser: Browser, web: WebService, alpha: SeededTenant, axe_source: str
) -> None:
    paths = (
        "/console",
        "/console?days=1",
        "/console/decisions",
        "/console/export",
        "/console/decisions?verdict=nonsense",  # the console's error page
    )
    with console_context(browser, web, alpha.auditor_token, bypass_csp=True) as context:
        page = context.pages[0]
        found: dict[str, list[dict[str, Any]]] = {}
        for path in paths:
            page.goto(path)
            page.add_script_tag(content=axe_source)
            violations = page.evaluate(_AXE_RUN)
            found[path] = [v for v in violations if v["impact"] in ("serious", "critical")]
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 1280, (path, width)
        assert found == {path: [] for path in paths}
    with console_context(browser, web, alpha.auditor_token, viewport=TABLET) as context:
        page = context.pages[0]
        for path in paths:
            page.goto(path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= TABLET["width"], (path, width)


def test_the_sign_in_pages_pass_axe(browser: Browser, web: WebService, axe_source: str) -> None:
    with console_context(browser, web, bypass_csp=True) as context:
        page = context.new_page()
        found: dict[str, list[dict[str, Any]]] = {}
        for state in ("empty", "refused", "signed out"):
            page.goto("/console/sign-in")
            if state == "refused":
                page.get_by_label("API key").fill("lg_not-a-key")
                page.get_by_role("button", name="Sign in").click()
                expect(page.locator("#sign-in-error")).to_be_visible()
            if state == "signed out":
                page.goto("/console/sign-in")
                page.get_by_label("API key").fill(web.token(CONSOLE_A, Role.AUDITOR))
                page.get_by_role("button", name="Sign in").click()
                page.get_by_role("button", name="Sign out").click()
                expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()
            page.add_script_tag(content=axe_source)
            violations = page.evaluate(_AXE_RUN)
            found[state] = [v for v in violations if v["impact"] in ("serious", "critical")]
        assert found == {"empty": [], "refused": [], "signed out": []}


def test_filter_and_open_a_decision_by_keyboard_alone(
    signed_in: BrowserContext, alpha: SeededTenant
) -> None:
    page = signed_in.pages[0]
    page.goto("/console/decisions")
    focused = ""
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.id")
        if focused == "f-requester":
            break
    assert focused == "f-requester"
    page.keyboard.type("batch")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "requester=batch" in page.url
    assert _count(page) == alpha.expected.by_requester[f"{CONSOLE_A}/batch"]
    first = page.locator("#decisions a.decision-link").first.inner_text()
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('decision-link')"):
            break
    assert page.evaluate("document.activeElement.textContent") == first
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(f"/console/decisions/{first}")
