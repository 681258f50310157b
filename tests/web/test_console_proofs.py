"""The console's in-browser proofs against a server that lies about what it shows, in real
Chromium against the live service on PostgreSQL (the console tests' seeded history,
tests/web/console_fixtures.py). Each test tells the lies a server could (edits the rendered
page, or the receipts it serves) and expects "Not verified" saying why: a decision page's and a
report's or certificate's every displayed fact, rows and blocks outside the checked places,
facts that read otherwise than they show, entries appended while a page is open, and a page
that lists nothing. docs/console.md says what the check covers and what it cannot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, Page, Route, expect
from sqlalchemy import func, select

from guard.api import Role
from guard.audit.tables import AuditCheckpointRow
from guard.identity.models import ErasureRow
from tests.support.history import SeededHistory
from tests.web.conftest import WebService
from tests.web.console_fixtures import (
    CONSOLE_A,
    CONSOLE_B,
    console_history,
    history,
    pages,
    signed_in_page,
    six_face_decision,
    stamped_image,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ONE, TWO = CONSOLE_A, CONSOLE_B

__all__ = ["console_history", "history", "pages"]  # fixtures, imported for pytest


# --- a server that lies about what it shows (the cold review's findings 1, 2, 4, 9) --------


def _lie(page: Page, script: str) -> None:
    """Change the rendered page as a lying server would have rendered it."""
    page.evaluate(script)


def _verify_says(page: Page, button: str, result: str, text: str) -> None:
    page.get_by_role("button", name=button).click()
    expect(page.locator(result)).to_contain_text(text, timeout=60_000)


def _each_lie_refused(
    page: Page, url: str, lies: Sequence[tuple[str, str]], button: str, result: str
) -> None:
    """Each lie, told on a freshly loaded page: the check refuses it, saying why."""
    for script, reason in lies:
        page.goto(url)
        _lie(page, script)
        _verify_says(page, button, result, reason)
        expect(page.locator(result)).to_contain_text("Not verified")


_ROW = "document.querySelector('[data-verify-rows] tr[data-index]')"
_DECISION_ROW = "document.querySelector('[data-verify-rows] tr[data-index]:has(a)')"


def test_every_fact_a_subject_report_row_shows_is_checked(
    browser: Browser, web: WebService, history: SeededHistory, pages: list[Page]
) -> None:
    one = history.tenant(ONE)
    subject = one.subjects[0]
    page = signed_in_page(browser, web, pages, one.auditor_token)
    url = f"/console/subjects/{subject.id}"
    lies = (
        # another verdict in the row's record of what it shows
        (
            f"""() => {{ const row = {_DECISION_ROW}; const s = JSON.parse(row.dataset.shown);
            s.verdict = s.verdict === 'deny' ? 'allow' : 'deny';
            row.dataset.shown = JSON.stringify(s); }}""",
            "differs from the proven entry in verdict",
        ),
        # a record that leaves the requester out (so a false one could be printed)
        (
            f"""() => {{ const row = {_DECISION_ROW}; const s = JSON.parse(row.dataset.shown);
            delete s.requester; row.dataset.shown = JSON.stringify(s); }}""",
            "differs from the proven entry in requester",
        ),
        # true record, false text
        (
            f"() => {{ {_DECISION_ROW}.querySelector('[data-fact=kind]')"
            ".textContent = 'release'; }",
            "shows another kind",
        ),
        (
            f"() => {{ {_DECISION_ROW}.querySelector('a')"
            ".setAttribute('href', '/console/decisions/x'); }",
            "links another decision",
        ),
        # another reference printed than the one the entries were checked for
        (
            "() => { document.querySelector('.shown-ref').textContent = 'f'.repeat(64); }",
            "the keyed reference shown is not the one",
        ),
    )
    _each_lie_refused(page, url, lies, "Verify every entry", "#verify-all-result")

    # Receipts that each verify, but against two checkpoints: not one tree.
    log = web.guard.audit
    page.goto(url)
    indices = json.loads(page.locator("#verify-all").get_attribute("data-indices") or "[]")
    assert len(indices) >= 2
    with web.guard.db.transaction() as session:
        older = session.scalar(
            select(func.max(AuditCheckpointRow.size)).where(
                AuditCheckpointRow.size > indices[1], AuditCheckpointRow.size < log.size()
            )
        )
    assert older is not None

    def two_trees(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["entries"][1]["receipt"] = log.receipt(indices[1], older).to_dict()
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/receipts.json*", two_trees)
    _verify_says(
        page, "Verify every entry", "#verify-all-result", "is proven against another checkpoint"
    )


def test_every_statement_of_an_erasure_certificate_is_checked(
    browser: Browser, web: WebService, history: SeededHistory, pages: list[Page]
) -> None:
    one = history.tenant(ONE)
    page = signed_in_page(browser, web, pages, one.auditor_token)
    page.goto("/console/consent")
    page.get_by_role("link", name="Erasure certificate").first.click()
    url = page.url
    _verify_says(page, "Verify every entry", "#verify-all-result", "Verified: all")
    by_person = "the person" in page.locator("#erased-by").inner_text()
    lies = (
        (
            """() => { const f = document.getElementById('erasure-act');
            const act = JSON.parse(f.dataset.act); act.count = (act.count || 0) + 1;
            f.dataset.act = JSON.stringify(act); }""",
            "differs from the proven one in count",
        ),
        (
            "() => { document.getElementById('erased-count').textContent = '99'; }",
            "(count)",
        ),
        (
            "() => { document.getElementById('erased-by').textContent = "
            + (
                "'the integrator, through the API'"
                if by_person
                else "'the person, on their own page'"
            )
            + "; }",
            "(by)",
        ),
        (
            "() => { const f = document.getElementById('erasure-act');"
            " f.querySelector('[data-fact=kind]').textContent = 'decision'; }",
            "(kind)",
        ),
        (
            f"() => {{ {_ROW}.querySelector('[data-fact=leaf_hash]')"
            ".textContent = '00'.repeat(32); }",
            "shows another leaf_hash",
        ),
        (
            f"""() => {{ const row = {_ROW}; const s = JSON.parse(row.dataset.shown);
            s.kind = 'subject_erased_by_person'; row.dataset.shown = JSON.stringify(s); }}""",
            "differs from the proven entry in kind",
        ),
        (
            """() => { const li = document.createElement('li'); li.textContent = 'a'.repeat(64);
            document.getElementById('grant-refs').appendChild(li); }""",
            "the grant references shown are not those",
        ),
        (
            """() => { const li = document.querySelector('.proof-steps li')
              || document.querySelector('.proof [data-fact=leaf_hash]');
            li.textContent = 'ab'.repeat(32); }""",
            "printed proof of entry",
        ),
        (
            """() => { const n = document.getElementById('checkpoint-note');
            n.textContent = n.textContent.replace(/\\n\\d+\\n/, '\\n1\\n'); }""",
            "the checkpoint printed on the certificate is not the one",
        ),
    )
    _each_lie_refused(page, url, lies, "Verify every entry", "#verify-all-result")


RELEASER = "lgd-releaser-co"


def _released_decision(browser: Browser, web: WebService, pages: list[Page]) -> tuple[Page, str]:
    """A stamped output's decision page (it has a release entry), open as the tenant's
    auditor: the page and its address."""
    stamped_image(web, RELEASER)
    entries = [e for _, e in web.guard.audit.entries(limit=100, tenant=RELEASER)]
    decision_id = next(e["decision_id"] for e in entries if e.get("kind") == "release")
    page = signed_in_page(browser, web, pages, web.token(RELEASER, Role.AUDITOR))
    url = f"/console/decisions/{decision_id}"
    page.goto(url)
    return page, url


def test_the_release_section_and_receipts_table_are_checked(
    browser: Browser, web: WebService, pages: list[Page]
) -> None:
    page, url = _released_decision(browser, web, pages)
    assert page.locator(".release").count() == 1
    _verify_says(page, "Verify inclusion", "#verify-result", "Verified: entry ")
    release = "document.querySelector('.release')"
    receipt_row = "document.querySelector('.receipt-row:last-child')"
    lies = (
        (
            f"""() => {{ const r = {release}; const s = JSON.parse(r.dataset.shown);
            s.output_sha256 = '0'.repeat(64); r.dataset.shown = JSON.stringify(s); }}""",
            "differs from this page in output_sha256",
        ),
        (
            f"() => {{ {release}.querySelector('[data-fact=watermark_record_id]')"
            ".textContent = 'ffff'; }",
            "shows another watermark_record_id",
        ),
        (
            f"() => {{ {release}.querySelector('[data-fact=manifest_label]').textContent = 'x'; }}",
            "shows another manifest_label",
        ),
        (
            f"() => {{ {receipt_row}.querySelector('[data-fact=leaf_hash]')"
            ".textContent = '00'.repeat(32); }",
            "shows another leaf_hash",
        ),
        (
            f"() => {{ {receipt_row}.querySelector('[data-fact=size]').textContent = '1'; }}",
            "shows another size",
        ),
    )
    _each_lie_refused(page, url, lies, "Verify inclusion", "#verify-result")

    # A server that leaves the release entry out of the proofs.
    def unproven(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["releases"] = []
        route.fulfill(response=response, body=json.dumps(body))

    page.goto(url)
    page.route("**/receipt.json*", unproven)
    _verify_says(page, "Verify inclusion", "#verify-result", "the server proved 0")


# --- the displayed text is checked, not only the data the page carries (second review) ------


def test_every_fact_a_decision_page_displays_is_checked(
    browser: Browser, web: WebService, history: SeededHistory, pages: list[Page]
) -> None:
    one = history.tenant(ONE)
    decision_id = six_face_decision(web, one)
    log = web.guard.audit
    entry = log.entry(log.index_of_decision(decision_id))
    page = signed_in_page(browser, web, pages, one.auditor_token)
    url = f"/console/decisions/{decision_id}"
    page.goto(url)
    # On success the answer states the key facts as the proven entry says them.
    _verify_says(
        page,
        "Verify inclusion",
        "#verify-result",
        f"the proven entry says decision {decision_id}: {entry['verdict']}",
    )
    expect(page.locator("#verify-result")).to_contain_text(
        f"policy {entry['policy']['id']} version {entry['policy']['version']}, time {entry['time']}"
    )
    fact = "document.querySelector('#decision-facts [data-fact={}]')"
    other = "deny" if entry["verdict"] != "deny" else "allow"
    lies = (
        # true attributes (data-shown, data-verdict), false text
        (
            f"() => {{ {fact.format('verdict_words')}.textContent = 'allowed!'; }}",
            "another verdict_words",
        ),
        (f"() => {{ {fact.format('verdict')}.textContent = '{other}'; }}", "another verdict "),
        (f"() => {{ {fact.format('operation')}.textContent = 'x_op'; }}", "another operation"),
        (f"() => {{ {fact.format('stage')}.textContent = 'x_stage'; }}", "another stage"),
        (
            f"() => {{ {fact.format('time')}.textContent = '2020-01-01T00:00:00+00:00'; }}",
            "another time",
        ),
        (f"() => {{ {fact.format('policy_version')}.textContent = '0'; }}", "another policy_"),
        (f"() => {{ {fact.format('index')}.textContent = '0'; }}", "another index"),
        (f"() => {{ {fact.format('input_sha256')}.textContent = 'ff'; }}", "another input_sha256"),
        # a cell that drops its data-fact is not thereby unchecked
        (
            f"() => {{ const o = {fact.format('operation')}; o.removeAttribute('data-fact');"
            " o.textContent = 'x_op'; }",
            "another operation",
        ),
        # a reason code added, with its words
        (
            """() => { const dd = document.querySelector('#decision-facts dd:nth-of-type(2)');
            dd.insertAdjacentHTML('beforeend', '<span data-fact="reason_code">public_figure'
              + '</span><span data-fact="reason_words">a face is a public figure on the '
              + 'blocklist</span>'); }""",
            "another reason_code",
        ),
        (
            "() => { document.querySelector('#faces [data-fact=face_verdict]')"
            ".textContent = 'allow_with_conditions'; }",
            "the faces table shows another face_verdict",
        ),
        (
            "() => { document.querySelector('#faces [data-fact=face_box]')"
            ".textContent = '0, 0, 1, 1'; }",
            "the faces table shows another face_box",
        ),
        (
            "() => { document.querySelector('#faces tr.face-row').remove(); }",
            "the faces table shows another face_",
        ),
        (
            "() => { document.getElementById('shown-decision-id').textContent = 'dec_x'; }",
            "heading names another decision",
        ),
    )
    _each_lie_refused(page, url, lies, "Verify inclusion", "#verify-result")
    if entry["reason_codes"]:
        page.goto(url)
        _lie(
            page,
            "() => { document.querySelector('[data-fact=reason_words]').textContent = 'fine'; }",
        )
        _verify_says(page, "Verify inclusion", "#verify-result", "another reason_words")


def test_every_fact_a_report_row_prints_is_checked(
    browser: Browser, web: WebService, history: SeededHistory, pages: list[Page]
) -> None:
    one = history.tenant(ONE)
    page = signed_in_page(browser, web, pages, one.auditor_token)
    url = f"/console/subjects/{one.subjects[0].id}"
    cell = f"{_DECISION_ROW}.querySelector('[data-fact={{}}]')"
    lies = (
        (
            f"() => {{ {cell.format('time')}.textContent = '2020-01-01T00:00:00+00:00'; }}",
            "another time",
        ),
        (f"() => {{ {cell.format('verdict')}.textContent = 'allow_x'; }}", "another verdict"),
        (f"() => {{ {cell.format('verdict_words')}.textContent = 'x'; }}", "another verdict_words"),
        (
            f"() => {{ {cell.format('requester')}.textContent = 'ab'.repeat(32); }}",
            "another requester",
        ),
        (
            f"() => {{ const t = {cell.format('time')}; t.removeAttribute('data-fact');"
            " t.textContent = 'yesterday'; }",
            "shows another time",
        ),
        # an index Number() reads as the row's, printed otherwise
        (
            f"() => {{ const r = {_DECISION_ROW}; r.dataset.index = ' ' + r.dataset.index; }}",
            "unreadable index",
        ),
        (
            f"() => {{ const r = {_DECISION_ROW};"
            " r.dataset.index = '0x' + Number(r.dataset.index).toString(16); }",
            "unreadable index",
        ),
    )
    _each_lie_refused(page, url, lies, "Verify every entry", "#verify-all-result")

    page.goto("/console/consent")
    page.get_by_role("link", name="Erasure certificate").first.click()
    certificate = page.url
    for script, reason in (
        (
            f"() => {{ {_ROW}.querySelector('[data-fact=time]').textContent = '1970'; }}",
            "another time",
        ),
        ("() => { document.getElementById('erased-by').removeAttribute('data-fact'); }", "(by)"),
        (
            "() => { document.querySelector('.proof [data-fact=kind]').textContent = 'x'; }",
            "(kind)",
        ),
    ):
        page.goto(certificate)
        _lie(page, script)
        _verify_says(page, "Verify every entry", "#verify-all-result", reason)
        expect(page.locator("#verify-all-result")).to_contain_text("Not verified")


RACER = "lgd-racer-co"


def _note(web: WebService, ref: str) -> None:
    """An entry for the subject, appended as a request elsewhere would (a kind of its own: the
    checks read only the members every entry has)."""
    web.guard.audit.append(
        {"v": 2, "kind": "note", "time": "2026-01-01T00:00:00+00:00", "tenant": RACER,
         "subject_refs": [ref]}
    )  # fmt: skip


def test_entries_appended_while_a_report_is_open_do_not_fail_its_check(
    browser: Browser, web: WebService, pages: list[Page], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, log = web.guard.registry, web.guard.audit
    subject = registry.create_subject(RACER)
    ref = registry.subject_ref(subject.id, RACER)
    _note(web, ref)
    page = signed_in_page(browser, web, pages, web.token(RACER, Role.AUDITOR))
    page.goto(f"/console/subjects/{subject.id}")
    listed = page.locator("[data-verify-rows] tr[data-index]").count()
    # Appended after the page was made: not listed, so not to be proven either.
    _note(web, ref)
    _verify_says(page, "Verify every entry", "#verify-all-result", f"Verified: all {listed} ")

    # Appended while the page is made, between its list and its tree size: listed and proven
    # alike (the size is read first).
    registry.erase(subject.id)
    with web.guard.db.transaction() as session:
        certificate = session.scalar(
            select(ErasureRow.certificate_id).where(ErasureRow.tenant == RACER)
        )
    size = log.size

    def growing() -> int:
        monkeypatch.setattr(log, "size", size)
        _note(web, ref)
        return size()

    monkeypatch.setattr(log, "size", growing)
    page.goto(f"/console/erasures/{certificate}")
    monkeypatch.setattr(log, "size", size)
    _verify_says(page, "Verify every entry", "#verify-all-result", "Verified: all")

    # The same for a decision and a release appended while its page is made.
    stamped_image(web, RACER)
    decision_id = next(
        e["decision_id"]
        for _, e in log.entries(limit=100, tenant=RACER)
        if e.get("kind") == "release"
    )

    def releasing() -> int:
        monkeypatch.setattr(log, "size", size)
        log.append(
            {"v": 2, "kind": "release", "time": "2026-01-01T00:00:00+00:00", "tenant": RACER,
             "decision_id": decision_id, "output_sha256": "ab" * 32,
             "watermark_record_id": None, "manifest_label": None}
        )  # fmt: skip
        return size()

    monkeypatch.setattr(log, "size", releasing)
    page.goto(f"/console/decisions/{decision_id}")
    monkeypatch.setattr(log, "size", size)
    assert page.locator(".release").count() == 2
    _verify_says(page, "Verify inclusion", "#verify-result", "Verified: entry ")


# --- what a page shows outside the checked places, or otherwise than it reads (final review) --


UNLOGGED = "lgd-unlogged-co"
EMPTY = "lgd-empty-co"


def test_a_certificate_that_names_no_erasure_entry_prints_the_fixed_words(
    browser: Browser, web: WebService, pages: list[Page]
) -> None:
    # An erasure whose entry is not listed: the page's "By", templates count and tenant are
    # still its fixed words, checked, not any text.
    registry = web.guard.registry
    subject = registry.create_subject(UNLOGGED)
    ref = registry.subject_ref(subject.id, UNLOGGED)
    web.guard.audit.append(
        {"v": 2, "kind": "note", "time": "2026-01-01T00:00:00+00:00", "tenant": UNLOGGED,
         "subject_refs": [ref]}
    )  # fmt: skip
    with web.guard.db.transaction() as session:
        row = ErasureRow(subject_ref=ref, tenant=UNLOGGED, erased_at=datetime.now(UTC))
        session.add(row)
        session.flush()
        certificate = row.certificate_id
    page = signed_in_page(browser, web, pages, web.token(UNLOGGED, Role.AUDITOR))
    url = f"/console/erasures/{certificate}"
    page.goto(url)
    expect(page.locator("#erased-by")).to_have_text("not recorded in the audit log")
    _verify_says(page, "Verify every entry", "#verify-all-result", "Verified: all ")
    lies = (
        (
            "() => { document.getElementById('erased-by').textContent ="
            " 'the person, on their own page'; }",
            "shows another by",
        ),
        ("() => { document.getElementById('erased-count').textContent = '3'; }", "another count"),
        (
            "() => { document.querySelector('#erasure-act dd').textContent = 'lgd-other-co'; }",
            "another tenant",
        ),
    )
    _each_lie_refused(page, url, lies, "Verify every entry", "#verify-all-result")


def test_a_page_that_lists_no_entries_verifies_nothing(
    browser: Browser, web: WebService, pages: list[Page]
) -> None:
    # A page (and receipts) listing nothing: a subject's creation is logged, so the server
    # leaves out what there is. Nothing was checked, so nothing is "Verified".
    subject = web.guard.registry.create_subject(EMPTY)
    page = signed_in_page(browser, web, pages, web.token(EMPTY, Role.AUDITOR))

    def nothing(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=json.dumps({**response.json(), "entries": []}))

    page.route("**/receipts.json*", nothing)
    page.goto(f"/console/subjects/{subject.id}")
    _lie(
        page,
        "() => { document.getElementById('verify-all').dataset.indices = '[]';"
        " document.querySelector('[data-verify-rows]').remove(); }",
    )
    # A region the server rendered hidden is shown for the answer.
    _lie(page, "() => { document.getElementById('verify-all-result').hidden = true; }")
    _verify_says(
        page, "Verify every entry", "#verify-all-result", "Nothing to verify: this page lists no"
    )
    result = page.locator("#verify-all-result")
    expect(result).to_be_visible()
    expect(result).to_have_class("problem")


def test_report_rows_and_facts_outside_the_checked_places_are_refused(
    browser: Browser, web: WebService, history: SeededHistory, pages: list[Page]
) -> None:
    one = history.tenant(ONE)
    page = signed_in_page(browser, web, pages, one.auditor_token)
    url = f"/console/subjects/{one.subjects[0].id}"
    cell = f"{_DECISION_ROW}.querySelector('[data-fact={{}}]')"
    lies = (
        # the reference printed without the class the check selects by
        (
            "() => { const r = document.querySelector('.shown-ref');"
            " r.classList.remove('shown-ref'); r.textContent = 'f'.repeat(64); }",
            "the keyed reference shown is not the one",
        ),
        # a row without data-index, showing an entry nobody proved
        (
            "() => { document.querySelector('[data-verify-rows] tbody').insertAdjacentHTML("
            "'beforeend', '<tr><td>0</td><td>decision</td><td>2020</td><td>refused</td>"
            "<td>-</td><td>-</td></tr>'); }",
            "a row of entries that is not one of the listed entries",
        ),
        # a fact printed outside every checked place
        (
            "() => { document.querySelector('main').insertAdjacentHTML('beforeend',"
            " '<p><span data-fact=\"verdict\">allow</span></p>'); }",
            "a fact outside the places this check compares",
        ),
        # text that reads as the proven fact but shows otherwise
        (
            f"() => {{ const i = {cell.format('index')};"
            " i.innerHTML = '<bdo dir=\"rtl\">' + i.textContent + '</bdo>'; }",
            "shows another index",
        ),
        (f"() => {{ {cell.format('time')}.setAttribute('dir', 'rtl'); }}", "shows another time"),
        (
            f"() => {{ const v = {cell.format('verdict')}; v.hidden = true;"
            " v.insertAdjacentText('afterend', 'allow_x'); }",
            "shows another verdict",
        ),
        (
            f"() => {{ {cell.format('verdict_words')}.style.opacity = '0'; }}",
            "shows another verdict_words",
        ),
    )
    _each_lie_refused(page, url, lies, "Verify every entry", "#verify-all-result")


def test_certificate_blocks_and_singletons_are_checked(
    browser: Browser, web: WebService, history: SeededHistory, pages: list[Page]
) -> None:
    page = signed_in_page(browser, web, pages, history.tenant(ONE).auditor_token)
    page.goto("/console/consent")
    page.get_by_role("link", name="Erasure certificate").first.click()
    url = page.url
    lies = (
        (
            "() => { const p = document.querySelector('.proof'); const c = p.cloneNode(true);"
            " c.removeAttribute('data-index'); p.after(c); }",
            "prints a proof without its index",
        ),
        (
            "() => { const n = document.getElementById('checkpoint-note');"
            " n.insertAdjacentHTML('afterend', '<pre id=\"checkpoint-note\">forged</pre>'); }",
            "the checkpoint printed on the certificate is not the one",
        ),
        (
            "() => { document.querySelector('#erasure-act dd').textContent = 'lgd-other-co'; }",
            "(tenant)",
        ),
    )
    _each_lie_refused(page, url, lies, "Verify every entry", "#verify-all-result")


def test_decision_heading_address_stage_and_faces_are_checked(
    browser: Browser, web: WebService, history: SeededHistory, pages: list[Page]
) -> None:
    one = history.tenant(ONE)
    decision_id = six_face_decision(web, one)
    page = signed_in_page(browser, web, pages, one.auditor_token)
    url = f"/console/decisions/{decision_id}"
    lies = (
        # a first #shown-decision-id out of sight, the heading naming another
        (
            "() => { const h = document.getElementById('shown-decision-id');"
            " h.insertAdjacentHTML('beforebegin', '<span hidden id=\"shown-decision-id\">'"
            " + h.textContent + '</span>'); h.textContent = 'dec_x'; }",
            "heading names another decision",
        ),
        (
            "() => { const dd = document.querySelector('#decision-facts [data-fact=stage]')"
            ".parentElement; dd.innerHTML = dd.innerHTML.replace('before the edit', 'X')"
            ".replace('scan of the output', 'before the edit').replace('X',"
            " 'scan of the output'); }",
            "another stage_words",
        ),
        # a faces row without its facts marked
        (
            "() => { const r = document.querySelector('#faces tr.face-row');"
            " const c = r.cloneNode(true); c.className = '';"
            " c.querySelectorAll('[data-fact]').forEach((e) => e.removeAttribute('data-fact'));"
            " r.after(c); }",
            "the faces table does not list",
        ),
    )
    _each_lie_refused(page, url, lies, "Verify inclusion", "#verify-result")

    # Another decision's page, whole and consistent, served at this decision's address.
    other = next(d for d in one.real_decision_ids if d != decision_id)

    def swapped(route: Route) -> None:
        route.fulfill(response=route.fetch(url=f"{web.base_url}/console/decisions/{other}"))

    page.route(f"**/console/decisions/{decision_id}", swapped)
    page.goto(url)
    _verify_says(page, "Verify inclusion", "#verify-result", "this page's address names")


def test_release_blocks_receipt_rows_and_the_faces_sentence_are_checked(
    browser: Browser, web: WebService, pages: list[Page]
) -> None:
    page, url = _released_decision(browser, web, pages)
    expect(page.locator("#faces")).to_contain_text("No faces were found in this image.")
    lies = (
        (
            "() => { const r = document.querySelector('.release'); const c = r.cloneNode(true);"
            " c.removeAttribute('data-index'); r.after(c); }",
            "a release entry without its index",
        ),
        (
            "() => { const r = document.querySelector('.receipt-row'); const c = r.cloneNode(true);"
            " c.className = ''; c.removeAttribute('data-index'); r.after(c); }",
            "a row that is not an entry's receipt",
        ),
        (
            "() => { [...document.querySelectorAll('#faces p')].find((p) =>"
            " p.textContent.includes('No faces')).textContent ="
            " 'Face positions were not recorded for this decision.'; }",
            "another faces_note",
        ),
    )
    _each_lie_refused(page, url, lies, "Verify inclusion", "#verify-result")
