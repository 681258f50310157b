"""The console's decision, consent, subject, erasure and verify pages in real Chromium, at
1280x800, against the live service on PostgreSQL with the console tests' seeded history of two
tenants (tests/web/console_fixtures.py): real checks of real photos, the receipt checked in the
browser (and failing when tampered with or checked with the wrong key), tenant isolation, the
erasure certificate, drag-and-drop provenance verification that stores nothing, and axe-core."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image
from playwright.sync_api import Browser, Page, Route, ViewportSize, expect
from sqlalchemy import func, select

from guard.api import Role
from guard.audit.checkpoint import AUDIT_KEY_NAME, CheckpointSigner
from guard.audit.tables import AuditCheckpointRow
from guard.errors import NotFound
from guard.identity.models import ErasureRow
from guard.media import encode_image
from guard.samples import natural_photos
from guard.web.console.decision import visible_decision
from guard.web.console.sessions import Viewer
from tests.support.history import SeededHistory, SeededTenant
from tests.support.live import image_part, params
from tests.web.conftest import WebService
from tests.web.console_fixtures import CONSOLE_A, CONSOLE_B, console_history

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ONE, TWO = CONSOLE_A, CONSOLE_B
STAMPER = "lgd-stamper-co"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
_AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map(n => n.target.join(" "))}));
}"""


__all__ = ["console_history"]  # the fixture, imported for pytest


@pytest.fixture
def history(console_history: SeededHistory) -> SeededHistory:
    return console_history


def _open(browser: Browser, web: WebService, token: str, *, bypass_csp: bool = False) -> Page:
    context = browser.new_context(viewport=VIEWPORT, base_url=web.base_url, bypass_csp=bypass_csp)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto("/console/sign-in")
    page.get_by_label("API key").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console")
    return page


@pytest.fixture
def pages(browser: Browser, web: WebService) -> Iterator[list[Page]]:
    opened: list[Page] = []
    yield opened
    for page in opened:
        page.context.close()


def _signed_in(browser: Browser, web: WebService, pages: list[Page], token: str, **kw: Any) -> Page:
    page = _open(browser, web, token, **kw)
    pages.append(page)
    return page


def _six_face_decision(web: WebService, tenant: SeededTenant) -> str:
    log = web.guard.audit
    for decision_id in tenant.real_decision_ids:
        if len(log.entry(log.index_of_decision(decision_id))["faces"]) == 6:
            return decision_id
    raise AssertionError("the seeded t1 check did not record six faces")


def _tamper(change: str) -> Any:
    def handler(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        lines = body["receipt"]["checkpoint"].split("\n")
        if change == "size":
            lines[1] = str(int(lines[1]) + 1)
        else:
            root = bytearray(base64.b64decode(lines[2]))
            root[0] ^= 1
            lines[2] = base64.b64encode(bytes(root)).decode()
        body["receipt"]["checkpoint"] = "\n".join(lines)
        route.fulfill(response=response, body=json.dumps(body))

    return handler


def test_decision_page_draws_faces_and_verifies_in_the_browser(
    browser: Browser, web: WebService, history: SeededHistory, pages: list[Page]
) -> None:
    one = history.tenant(ONE)
    decision_id = _six_face_decision(web, one)
    page = _signed_in(browser, web, pages, one.auditor_token)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Security Policy" in m.text else None)
    page.goto(f"/console/decisions/{decision_id}")
    expect(page.get_by_role("heading", name=f"Decision {decision_id}")).to_be_visible()
    assert page.locator("svg.outline g.face").count() == 6
    assert page.locator("main img").count() == 0 and page.locator("image").count() == 0
    expect(page.get_by_role("heading", name="Rules that applied")).to_be_visible()
    expect(page.locator("main")).to_contain_text(f"{one.requesters[0]}")

    verify = page.get_by_role("button", name="Verify inclusion")
    result = page.locator("#verify-result")
    verify.click()
    expect(result).to_contain_text("Verified: entry ")
    expect(result).to_contain_text(f"signed by {AUDIT_KEY_NAME}")

    for change, reason in (("size", "signature"), ("root", "signature")):
        page.route("**/receipt.json*", _tamper(change))
        verify.click()
        expect(result).to_contain_text("Not verified:")
        expect(result).to_contain_text(reason)
        page.unroute("**/receipt.json*")

    wrong = CheckpointSigner(AUDIT_KEY_NAME, Ed25519PrivateKey.generate()).verifier_key
    page.get_by_label("Your pinned verifier key").fill(wrong)
    verify.click()
    expect(result).to_contain_text("Not verified:")
    page.get_by_label("Your pinned verifier key").fill(page.locator("#server-key").inner_text())
    verify.click()
    expect(result).to_contain_text("(your pinned key)")

    # A server that proves one entry and shows another's facts: the page's own record of what
    # it showed (data-shown) differs from the proven entry in the operation, and in the index.
    page.evaluate(
        """() => {
            const section = document.getElementById('verify-inclusion');
            const shown = JSON.parse(section.dataset.shown);
            shown.operation = 'something_else';
            section.dataset.shown = JSON.stringify(shown);
        }"""
    )
    verify.click()
    expect(result).to_contain_text("differs from this page in operation")
    page.reload()
    page.evaluate("() => { document.getElementById('verify-inclusion').dataset.index = '0'; }")
    page.get_by_role("button", name="Verify inclusion").click()
    expect(result).to_contain_text("not entry 0 shown here")
    assert violations == []


def test_another_tenants_decision_is_not_found(
    browser: Browser, web: WebService, history: SeededHistory, pages: list[Page]
) -> None:
    decision_id = history.tenant(ONE).real_decision_ids[0]
    page = _signed_in(browser, web, pages, history.tenant(TWO).auditor_token)
    theirs = page.goto(f"/console/decisions/{decision_id}")
    assert theirs is not None and theirs.status == 404
    title = page.locator("h1").inner_text()
    nobody = page.goto("/console/decisions/dec_" + "0" * 32)
    assert nobody is not None and nobody.status == 404
    assert page.locator("h1").inner_text() == title
    assert page.request.get(f"/console/decisions/{decision_id}/receipt.json").status == 404
    anonymous = browser.new_context(base_url=web.base_url)
    try:
        assert anonymous.request.get(f"/console/decisions/{decision_id}/receipt.json").status == 401
    finally:
        anonymous.close()


def test_consent_page_lists_grants_requests_and_erasures(
    browser: Browser, web: WebService, history: SeededHistory, pages: list[Page]
) -> None:
    one = history.tenant(ONE)
    page = _signed_in(browser, web, pages, one.auditor_token)
    page.goto("/console/consent")
    main = page.locator("main")
    for grant in one.grants:
        if grant.subject_id != one.erased_subject_id:
            expect(main).to_contain_text(grant.id)
    soon = [g for g in one.grants if g.expires_at is not None and not g.revoked]
    assert soon
    expect(page.locator("tr.soon .ending-soon").first).to_contain_text("Ending soon: in ")
    expect(main).to_contain_text("revoked")
    expect(main).to_contain_text(one.declined_request_id)
    erased = next(s for s in one.subjects if s.erased)
    expect(main).to_contain_text(erased.ref)
    expect(main).not_to_contain_text(erased.display_name)
    for other in history.tenant(TWO).subjects:
        expect(main).not_to_contain_text(other.id)

    operator = _signed_in(browser, web, pages, web.token("", Role.OPERATOR))
    answer = operator.goto("/console/consent")
    assert answer is not None and answer.status == 403


def test_subject_report_lists_their_decisions(
    browser: Browser, web: WebService, history: SeededHistory, pages: list[Page]
) -> None:
    one = history.tenant(ONE)
    subject = one.subjects[0]
    page = _signed_in(browser, web, pages, one.auditor_token)
    page.goto(f"/console/subjects/{subject.id}")
    expect(page.locator("main")).to_contain_text(subject.display_name)
    links = page.locator("#subject-entries a[href^='/console/decisions/']")
    assert links.count() == one.expected.by_subject[subject.id]
    # Every listed entry proven in the browser, and carrying this subject's reference.
    button = page.get_by_role("button", name="Verify every entry")
    result = page.locator("#verify-all-result")
    button.click()
    listed = page.locator("#subject-entries tbody tr").count()
    expect(result).to_contain_text(f"Verified: all {listed} entries", timeout=60_000)
    # A server that leaves an entry out of the proofs (or proves another) is caught.
    page.route("**/receipts.json*", _drop_first_receipt)
    button.click()
    expect(result).to_contain_text("is listed but was not proven", timeout=60_000)
    page.unroute("**/receipts.json*")
    page.route("**/receipts.json*", _tamper_first_entry)
    button.click()
    expect(result).to_contain_text("Not verified: entry", timeout=60_000)
    page.unroute("**/receipts.json*")
    links.first.click()
    expect(page.locator("h1")).to_contain_text("Decision")

    title = page.goto(f"/console/subjects/{history.tenant(TWO).subjects[0].id}")
    assert title is not None and title.status == 404
    missing = page.goto("/console/subjects/sub_nobody")
    assert missing is not None and missing.status == 404


def _drop_first_receipt(route: Route) -> None:
    response = route.fetch()
    body = response.json()
    body["entries"] = body["entries"][1:]
    route.fulfill(response=response, body=json.dumps(body))


def _tamper_first_entry(route: Route) -> None:
    response = route.fetch()
    body = response.json()
    body["entries"][0]["entry_text"] = body["entries"][0]["entry_text"].replace('"v":2', '"v":3')
    route.fulfill(response=response, body=json.dumps(body))


def test_erasure_certificate(
    browser: Browser, web: WebService, history: SeededHistory, pages: list[Page]
) -> None:
    one = history.tenant(ONE)
    erased = next(s for s in one.subjects if s.erased)
    page = _signed_in(browser, web, pages, one.auditor_token)
    page.goto("/console/consent")
    page.get_by_role("link", name="Erasure certificate").first.click()
    main = page.locator("main")
    expect(page.locator("#erased-ref")).to_have_text(erased.ref)
    expect(page.locator("#remaining-entries")).to_contain_text("subject_erased")
    assert page.locator(".proof").count() >= 1
    expect(page.locator("#checkpoint-note")).to_contain_text("likeness-guard")
    expect(page.locator("#verifier-key")).to_contain_text(AUDIT_KEY_NAME)
    expect(main).to_contain_text("No display name")
    expect(main).not_to_contain_text(erased.display_name)
    expect(main).not_to_contain_text(erased.id)
    page.get_by_role("button", name="Verify every entry").click()
    expect(page.locator("#verify-all-result")).to_contain_text("Verified: all", timeout=60_000)

    page.emulate_media(media="print")
    expect(page.locator("nav[aria-label='Console']")).to_be_hidden()
    expect(page.locator("#checkpoint-note")).to_be_visible()
    page.emulate_media(media="screen")

    url = page.url
    two = _signed_in(browser, web, pages, history.tenant(TWO).auditor_token)
    theirs = two.goto(url)
    assert theirs is not None and theirs.status == 404
    # Certificates are named at random: no row number (counting every tenant's erasures).
    assert re.fullmatch(r".*/console/erasures/[0-9a-f]{32}", url), url
    for bad in ("0", "1", "x", "0" * 32, url.rsplit("/", 1)[1].upper()):
        answer = two.goto(f"/console/erasures/{bad}")
        assert answer is not None and answer.status == 404


def _stamped(web: WebService, tenant: str) -> bytes:
    with web.client(tenant) as api:
        answer = api.post(
            "/v1/stamps",
            data=params(generator="lgc-gen", output_format="png"),
            files=image_part("coffee"),
        )
    assert answer.status_code == 200, answer.text
    return base64.b64decode(answer.json()["image"]["data_base64"])


def _laundered(data: bytes) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    width, height = image.size
    cropped = image.crop((width // 50, height // 50, width - width // 50, height - height // 50))
    out = io.BytesIO()
    cropped.save(out, "JPEG", quality=70)
    return out.getvalue()


def _drop(page: Page, data: bytes, name: str, media_type: str) -> None:
    transfer = page.evaluate_handle(
        """([b64, name, type]) => {
          const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
          const dt = new DataTransfer();
          dt.items.add(new File([bytes], name, {type}));
          return dt;
        }""",
        [base64.b64encode(data).decode(), name, media_type],
    )
    with page.expect_navigation():
        page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})


def test_verify_an_image_by_form_and_by_drop_stores_nothing(
    browser: Browser, web: WebService, history: SeededHistory, pages: list[Page], tmp_path: Any
) -> None:
    # A tenant of its own stamps: a stamp is a decision, and the seeded tenants' counts are
    # what the decisions tests check (they share this service).
    stamped = _stamped(web, STAMPER)
    size = web.guard.audit.size()
    page = _signed_in(browser, web, pages, web.token(STAMPER, Role.AUDITOR))
    page.goto("/console/verify")
    path = tmp_path / "stamped.png"
    path.write_bytes(stamped)
    page.get_by_label("Image to verify").set_input_files(path)
    page.get_by_role("button", name="Verify", exact=True).click()
    outcome = page.locator("#outcome")
    expect(outcome).to_have_attribute("data-outcome", "valid")
    expect(page.locator("#verify-report a[href^='/console/decisions/']")).to_have_count(1)
    expect(page.locator("#verify-report")).to_contain_text("c2pa.created")

    _drop(page, _laundered(stamped), "copy.jpg", "image/jpeg")
    expect(outcome).to_have_attribute("data-outcome", "recovered")
    expect(page.locator("#watermark-record")).to_be_visible()

    unrelated = encode_image(natural_photos()["rocket"], "png")
    _drop(page, unrelated, "rocket.png", "image/png")
    expect(outcome).to_have_attribute("data-outcome", "not_from_this_guard")

    # Another tenant sees the decision id but no link to it.
    two = _signed_in(browser, web, pages, history.tenant(TWO).auditor_token)
    two.goto("/console/verify")
    two.get_by_label("Image to verify").set_input_files(path)
    two.get_by_role("button", name="Verify", exact=True).click()
    expect(two.locator("#outcome")).to_have_attribute("data-outcome", "valid")
    expect(two.locator("#verify-report a[href^='/console/decisions/']")).to_have_count(0)
    assert web.guard.audit.size() == size


def test_pages_pass_axe(
    browser: Browser,
    web: WebService,
    history: SeededHistory,
    pages: list[Page],
    axe_source: str,
    tmp_path: Any,
) -> None:
    one = history.tenant(ONE)
    page = _signed_in(browser, web, pages, one.auditor_token, bypass_csp=True)
    found: dict[str, list[dict[str, Any]]] = {}

    def audit(name: str) -> None:
        page.add_script_tag(content=axe_source)
        violations: list[dict[str, Any]] = page.evaluate(_AXE_RUN)
        found[name] = [v for v in violations if v["impact"] in ("serious", "critical")]

    page.goto(f"/console/decisions/{_six_face_decision(web, one)}")
    page.get_by_role("button", name="Verify inclusion").click()
    expect(page.locator("#verify-result")).to_contain_text("Verified")
    audit("decision")
    page.goto("/console/consent")
    audit("consent")
    page.goto(f"/console/subjects/{one.subjects[0].id}")
    audit("subject")
    page.goto("/console/consent")
    page.get_by_role("link", name="Erasure certificate").first.click()
    audit("erasure")
    page.goto("/console/verify")
    audit("verify")
    path = tmp_path / "rocket.png"
    path.write_bytes(encode_image(natural_photos()["rocket"], "png"))
    page.get_by_label("Image to verify").set_input_files(path)
    page.get_by_role("button", name="Verify", exact=True).click()
    expect(page.locator("#outcome")).to_be_visible()
    audit("verify report")
    assert found == {name: [] for name in found}


def test_verify_refuses_bad_uploads_and_forged_forms(
    browser: Browser, web: WebService, history: SeededHistory, pages: list[Page]
) -> None:
    page = _signed_in(browser, web, pages, history.tenant(ONE).auditor_token)
    page.goto("/console/verify")
    token = page.locator("#verify-form input[name=csrf]").get_attribute("value")
    size = web.guard.audit.size()
    png = encode_image(natural_photos()["rocket"], "png")

    def post(csrf: str | None, name: str, media_type: str, data: bytes) -> Any:
        return page.request.post(
            "/console/verify",
            multipart={
                "csrf": csrf or "",
                "image": {"name": name, "mimeType": media_type, "buffer": data},
            },
        )

    text = post(token, "notes.txt", "text/plain", b"not an image")
    assert text.status == 415 and 'id="verify-error"' in text.text()
    broken = post(token, "broken.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    assert broken.status == 200 and 'data-outcome="error"' in broken.text()
    forged = post("forged", "rocket.png", "image/png", png)
    assert forged.status == 403
    assert web.guard.audit.size() == size


def test_decision_under_an_older_policy_and_without_positions(
    browser: Browser, web: WebService, history: SeededHistory, pages: list[Page]
) -> None:
    entries = [e for _, e in web.guard.audit.entries(limit=1000, tenant=ONE)]
    decisions = [e for e in entries if e.get("kind") == "decision"]
    older = next(e for e in decisions if e["policy"]["version"] == history.policy_versions[0])
    page = _signed_in(browser, web, pages, history.tenant(ONE).auditor_token)
    page.goto(f"/console/decisions/{older['decision_id']}")
    expect(page.locator("main")).to_contain_text("is not the one this decision was made under")
    expect(page.locator("main")).to_contain_text("another policy version is in force")
    unplaced = [e for e in decisions if not e.get("image")]
    if unplaced:
        page.goto(f"/console/decisions/{unplaced[0]['decision_id']}")
        expect(page.locator("main")).to_contain_text(
            "Face positions were not recorded for this decision."
        )
        assert page.locator("svg.outline").count() == 0


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
    page = _signed_in(browser, web, pages, one.auditor_token)
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
    page = _signed_in(browser, web, pages, one.auditor_token)
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


def test_the_release_section_and_receipts_table_are_checked(
    browser: Browser, web: WebService, pages: list[Page]
) -> None:
    _stamped(web, RELEASER)
    entries = [e for _, e in web.guard.audit.entries(limit=100, tenant=RELEASER)]
    decision_id = next(e["decision_id"] for e in entries if e.get("kind") == "release")
    page = _signed_in(browser, web, pages, web.token(RELEASER, Role.AUDITOR))
    url = f"/console/decisions/{decision_id}"
    page.goto(url)
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


def test_another_tenants_decision_is_refused_before_its_entry_is_read(
    web: WebService, history: SeededHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Finding 9: another tenant's id must cost what nobody's does, so no entry is fetched or
    # parsed for it: the tenant is in the query.
    log = web.guard.audit
    theirs = history.tenant(ONE).real_decision_ids[0]

    def no_reading(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an entry was read for another tenant's decision")

    monkeypatch.setattr(log, "entry", no_reading)
    monkeypatch.setattr(log, "entry_text", no_reading)
    viewer = cast(Viewer, SimpleNamespace(tenant=TWO))
    for decision_id in (theirs, "dec_" + "0" * 32):
        with pytest.raises(NotFound) as refused:
            visible_decision(log, decision_id, viewer)
        assert str(refused.value) == f"There is no decision {decision_id} in tenant {TWO}."


def test_an_export_missing_a_line_is_not_saved(
    browser: Browser, web: WebService, history: SeededHistory, pages: list[Page]
) -> None:
    page = _signed_in(browser, web, pages, history.tenant(ONE).auditor_token)
    page.goto("/console/export")
    saved: list[Any] = []

    def keep(download: Any) -> None:
        saved.append(download)

    page.on("download", keep)

    def one_line_less(route: Route) -> None:
        response = route.fetch()
        lines = response.text().splitlines(keepends=True)
        assert len(lines) >= 3 and "latest_checkpoint" in lines[-1]
        route.fulfill(response=response, body="".join(lines[:1] + lines[2:]))

    page.route("**/audit.jsonl", one_line_less)
    page.get_by_role("link", name="Download the audit log (JSON Lines)").click()
    status = page.locator("#export-status")
    expect(status).to_contain_text("The export is incomplete (it has ")
    expect(status).to_contain_text("nothing was saved")
    assert saved == []


# --- the displayed text is checked, not only the data the page carries (second review) ------


def test_every_fact_a_decision_page_displays_is_checked(
    browser: Browser, web: WebService, history: SeededHistory, pages: list[Page]
) -> None:
    one = history.tenant(ONE)
    decision_id = _six_face_decision(web, one)
    log = web.guard.audit
    entry = log.entry(log.index_of_decision(decision_id))
    page = _signed_in(browser, web, pages, one.auditor_token)
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
    page = _signed_in(browser, web, pages, one.auditor_token)
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
    page = _signed_in(browser, web, pages, web.token(RACER, Role.AUDITOR))
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
    _stamped(web, RACER)
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
    page = _signed_in(browser, web, pages, web.token(UNLOGGED, Role.AUDITOR))
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
    page = _signed_in(browser, web, pages, web.token(EMPTY, Role.AUDITOR))

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
    page = _signed_in(browser, web, pages, one.auditor_token)
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
    page = _signed_in(browser, web, pages, history.tenant(ONE).auditor_token)
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
    decision_id = _six_face_decision(web, one)
    page = _signed_in(browser, web, pages, one.auditor_token)
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
    _stamped(web, RELEASER)
    entries = [e for _, e in web.guard.audit.entries(limit=100, tenant=RELEASER)]
    decision_id = next(e["decision_id"] for e in entries if e.get("kind") == "release")
    page = _signed_in(browser, web, pages, web.token(RELEASER, Role.AUDITOR))
    url = f"/console/decisions/{decision_id}"
    page.goto(url)
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
