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
from types import SimpleNamespace
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image
from playwright.sync_api import Browser, Page, Route, expect

from guard.api import Role
from guard.audit.checkpoint import AUDIT_KEY_NAME, CheckpointSigner
from guard.errors import NotFound
from guard.media import encode_image
from guard.samples import natural_photos
from guard.web.console.decision import visible_decision
from guard.web.console.sessions import Viewer
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
STAMPER = "lgd-stamper-co"
_AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map(n => n.target.join(" "))}));
}"""


__all__ = ["console_history", "history", "pages"]  # fixtures, imported for pytest


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
    decision_id = six_face_decision(web, one)
    page = signed_in_page(browser, web, pages, one.auditor_token)
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
    page = signed_in_page(browser, web, pages, history.tenant(TWO).auditor_token)
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
    page = signed_in_page(browser, web, pages, one.auditor_token)
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

    operator = signed_in_page(browser, web, pages, web.token("", Role.OPERATOR))
    answer = operator.goto("/console/consent")
    assert answer is not None and answer.status == 403


def test_subject_report_lists_their_decisions(
    browser: Browser, web: WebService, history: SeededHistory, pages: list[Page]
) -> None:
    one = history.tenant(ONE)
    subject = one.subjects[0]
    page = signed_in_page(browser, web, pages, one.auditor_token)
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
    page = signed_in_page(browser, web, pages, one.auditor_token)
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
    two = signed_in_page(browser, web, pages, history.tenant(TWO).auditor_token)
    theirs = two.goto(url)
    assert theirs is not None and theirs.status == 404
    # Certificates are named at random: no row number (counting every tenant's erasures).
    assert re.fullmatch(r".*/console/erasures/[0-9a-f]{32}", url), url
    for bad in ("0", "1", "x", "0" * 32, url.rsplit("/", 1)[1].upper()):
        answer = two.goto(f"/console/erasures/{bad}")
        assert answer is not None and answer.status == 404


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
    stamped = stamped_image(web, STAMPER)
    size = web.guard.audit.size()
    page = signed_in_page(browser, web, pages, web.token(STAMPER, Role.AUDITOR))
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
    two = signed_in_page(browser, web, pages, history.tenant(TWO).auditor_token)
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
    page = signed_in_page(browser, web, pages, one.auditor_token, bypass_csp=True)
    found: dict[str, list[dict[str, Any]]] = {}

    def audit(name: str) -> None:
        page.add_script_tag(content=axe_source)
        violations: list[dict[str, Any]] = page.evaluate(_AXE_RUN)
        found[name] = [v for v in violations if v["impact"] in ("serious", "critical")]

    page.goto(f"/console/decisions/{six_face_decision(web, one)}")
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
    page = signed_in_page(browser, web, pages, history.tenant(ONE).auditor_token)
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
    page = signed_in_page(browser, web, pages, history.tenant(ONE).auditor_token)
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
    page = signed_in_page(browser, web, pages, history.tenant(ONE).auditor_token)
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
