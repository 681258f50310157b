"""Trust rules over HTTP, one test per attack (issue 15), on SQLite and PostgreSQL.

Each test plays the party the rule constrains, does what the attack did on the old main, and
asserts the refusal and that nothing changed: a tenant cannot make a public figure its own
consenting subject, cannot enroll a blocklisted face, cannot enroll one person as two subjects,
cannot enroll a face too small to stand for a consenting person, and cannot touch the blocklist;
only the operator links a subject to a figure, as an audited act with evidence.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx
import pytest

from guard.api import Role
from guard.errors import EnrollmentRefused
from guard.media import encode_image
from guard.samples import sample_bytes, sample_rgb
from tests.support.live import LiveFactory, LiveService, image_part, params
from tests.support.photos import ENROLL, crop
from tests.support.registry import EVIDENCE, reference_face

pytestmark = pytest.mark.storage

HANKS = {"image": ("hanks.png", sample_bytes("tom_hanks"), "image/png")}


@pytest.fixture
def service(live: LiveFactory) -> LiveService:
    """A guard whose blocklist holds Tom Hanks."""
    service = live(api_rate_burst=10_000)
    face = reference_face(service.guard, "tom_hanks")
    service.guard.blocklists.update(
        lambda b: b.add_figure("tom-hanks", "Tom Hanks", [face.embedding])
    )
    return service


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def _entries(service: LiveService, kind: str) -> list[dict[str, Any]]:
    entries = service.guard.audit.entries(limit=100_000)
    return [entry for _, entry in entries if entry["kind"] == kind]


def test_a_tenant_cannot_make_a_public_figure_its_consenting_subject(
    service: LiveService,
) -> None:
    """The attack: create a subject with public_figure_id tom-hanks, enroll his photo, grant
    consent to yourself, edit his photo, get a signed manifest saying he consented."""
    with (
        service.client("acme", Role.INTEGRATOR) as api,
        service.client("acme", Role.ADMIN) as admin,
    ):
        for key in (api, admin):
            linked = key.post("/v1/subjects", json={"public_figure_id": "tom-hanks"})
            _problem(linked, 403, "forbidden")
        subject_id = api.post("/v1/subjects", json={}).json()["id"]
        link = {"figure_id": "tom-hanks", "evidence_sha256": EVIDENCE}
        for key in (api, admin):
            _problem(
                key.put(f"/v1/subjects/{subject_id}/public-figure", json=link), 403, "forbidden"
            )
        enrolled = api.post(f"/v1/subjects/{subject_id}/faces", files=HANKS)
        refused = _problem(enrolled, 422, "enrollment_matches_public_figure")
        assert "operator" in refused["detail"]
        grant = {"subject_id": subject_id, "scopes": ["relight"], "evidence_sha256": EVIDENCE}
        assert api.post("/v1/consents", json=grant).status_code == 201
        edited = api.post("/v1/edits", data=params(operation="relight"), files=HANKS)
        _problem(edited, 403, "public_figure")
        assert api.get(f"/v1/subjects/{subject_id}").json()["template_count"] == 0
    assert _entries(service, "templates_enrolled") == []
    assert _entries(service, "public_figure_linked") == []


def test_only_the_operator_links_a_figure_and_the_link_is_audited(service: LiveService) -> None:
    with (
        service.client("acme", Role.INTEGRATOR) as api,
        service.client(role=Role.OPERATOR) as operator,
    ):
        subject_id = api.post("/v1/subjects", json={"display_name": "Tom Hanks"}).json()["id"]
        link = {"figure_id": "tom-hanks", "evidence_sha256": EVIDENCE}
        _problem(
            operator.put("/v1/subjects/sub_missing/public-figure", json=link), 404, "not_found"
        )
        nobody = {"figure_id": "nobody", "evidence_sha256": EVIDENCE}
        missing = operator.put(f"/v1/subjects/{subject_id}/public-figure", json=nobody)
        _problem(missing, 404, "not_found")
        linked = operator.put(f"/v1/subjects/{subject_id}/public-figure", json=link)
        assert linked.status_code == 200, linked.text
        assert linked.json()["public_figure_link"]["linked_by"].startswith("key:")
        again = operator.put(f"/v1/subjects/{subject_id}/public-figure", json=link)
        _problem(again, 409, "conflict")

        assert api.post(f"/v1/subjects/{subject_id}/faces", files=HANKS).status_code == 201
        grant = {"subject_id": subject_id, "scopes": ["relight"], "evidence_sha256": EVIDENCE}
        granted = api.post("/v1/consents", json=grant).json()
        assert granted["consent_level"] == "attested"
        attested = api.post("/v1/edits", data=params(operation="relight"), files=HANKS)
        _problem(attested, 403, "consent_not_confirmed")  # a figure confirms it themselves
        confirmation = api.post(f"/v1/consents/{granted['id']}/confirmation")
        assert confirmation.status_code == 201, confirmation.text
        confirmed = service.guard.registry.confirmations.redeem(confirmation.json()["token"])
        assert confirmed.level.value == "person_confirmed"
        edited = api.post("/v1/edits", data=params(operation="relight"), files=HANKS)
        assert edited.status_code == 200, edited.text
        stamped = base64.b64decode(edited.json()["image"]["data_base64"])
        report = service.guard.verify(stamped)
        assert report.decision is not None
        assert "public_figure_own_consent" in report.decision["reason_codes"]
        assert report.decision["public_figure_links"] == [
            {"figure_id": "tom-hanks", "linked_by": "operator"}
        ]
        assert report.decision["consent_levels"] == ["person_confirmed"]

        unlinked = operator.delete(f"/v1/subjects/{subject_id}/public-figure")
        assert unlinked.status_code == 200
        # The figure's face was enrollable only while linked: unlinking removes it.
        assert unlinked.json()["template_count"] == 0
        edited = api.post("/v1/edits", data=params(operation="relight"), files=HANKS)
        _problem(edited, 403, "public_figure")
    [linked_entry] = _entries(service, "public_figure_linked")
    assert linked_entry["figure_id"] == "tom-hanks"
    assert linked_entry["evidence_sha256"] == EVIDENCE
    assert linked_entry["actor"] == linked.json()["public_figure_link"]["linked_by"]
    assert subject_id not in json.dumps(linked_entry)  # keyed references only
    [unlinked_entry] = _entries(service, "public_figure_unlinked")
    assert unlinked_entry["actor"] == linked_entry["actor"]
    assert unlinked_entry["count"] == 1


def test_one_person_is_one_subject_in_a_tenant_and_other_tenants_learn_nothing(
    service: LiveService,
) -> None:
    photo = {"image": ("model.jpg", crop("t1", ENROLL), "image/jpeg")}
    with (
        service.client("acme", Role.INTEGRATOR) as acme,
        service.client("globex", Role.INTEGRATOR) as globex,
    ):
        first = acme.post("/v1/subjects", json={}).json()["id"]
        assert acme.post(f"/v1/subjects/{first}/faces", files=photo).status_code == 201
        assert acme.post(f"/v1/subjects/{first}/faces", files=photo).status_code == 201
        second = acme.post("/v1/subjects", json={}).json()["id"]
        duplicate = acme.post(f"/v1/subjects/{second}/faces", files=photo)
        refused = _problem(duplicate, 422, "enrollment_matches_another_subject")
        assert first in refused["detail"]
        assert acme.get(f"/v1/subjects/{second}").json()["template_count"] == 0

        theirs = globex.post("/v1/subjects", json={}).json()["id"]
        allowed = globex.post(f"/v1/subjects/{theirs}/faces", files=photo)
        assert allowed.status_code == 201, allowed.text
        assert first not in allowed.text and "acme" not in allowed.text
        # Template names are keyed per tenant, not row numbers that count every tenant's
        # enrolments (consecutive numbers would tell globex of acme's two in between).
        (name,) = allowed.json()["template_ids"]
        assert re.fullmatch(r"tpl_[0-9a-f]{24}", name), name
        own = service.guard.registry.template_ids(theirs)
        assert name == service.guard.registry.template_refs(own, "globex")[0]
        assert name != service.guard.registry.template_refs(own, "acme")[0]


def test_a_subjects_consent_does_not_stretch_to_another_persons_face(
    service: LiveService,
) -> None:
    """The attack: a person confirms consent for their subject, then the integrator adds a
    different person's face to that subject, so the confirmed grant covers them too."""
    model = {"image": ("a.jpg", crop("t1", ENROLL), "image/jpeg")}
    someone_else = {"image": ("b.jpg", crop("t1", (230, 450, 1060, 1280)), "image/jpeg")}
    with service.client("acme", Role.INTEGRATOR) as api:
        subject_id = api.post("/v1/subjects", json={}).json()["id"]
        assert api.post(f"/v1/subjects/{subject_id}/faces", files=model).status_code == 201
        added = api.post(f"/v1/subjects/{subject_id}/faces", files=someone_else)
        refused = _problem(added, 422, "enrollment_not_this_person")
        assert subject_id in refused["detail"]
        assert api.get(f"/v1/subjects/{subject_id}").json()["template_count"] == 1
    faces = [service.guard.faces_in(part["image"][1])[0] for part in (model, someone_else)]
    other = service.guard.registry.create_subject("acme")
    with pytest.raises(EnrollmentRefused) as together:  # two people in one enrollment
        service.guard.registry.enroll(other.id, faces)
    assert together.value.code == "enrollment_not_this_person"


def test_a_face_too_small_for_a_reliable_template_is_refused(service: LiveService) -> None:
    small = encode_image(sample_rgb("t1")[230:450, 20:230][::3, ::3], "jpeg")  # a 36 px face
    with service.client("acme", Role.INTEGRATOR) as api:
        subject_id = api.post("/v1/subjects", json={}).json()["id"]
        response = api.post(
            f"/v1/subjects/{subject_id}/faces", files={"image": ("small.jpg", small, "image/jpeg")}
        )
        if response.status_code == 400:  # the detector may not find so small a face at all
            assert "no face" in response.json()["detail"] or "0 faces" in response.json()["detail"]
        else:
            refused = _problem(response, 422, "enrollment_face_unreliable")
            assert "80 pixels" in refused["detail"]
        assert api.get(f"/v1/subjects/{subject_id}").json()["template_count"] == 0


def test_a_tenant_admin_cannot_change_or_read_the_blocklist(service: LiveService) -> None:
    generation = service.guard.blocklists.current().generation
    figure = {"figure_id": "eileen-collins", "name": "Eileen Collins"}
    upload = {"data": {"params": json.dumps(figure)}, "files": {"images": image_part()["image"]}}
    with service.client("acme", Role.ADMIN) as admin:
        _problem(admin.post("/v1/blocklist/figures", **upload), 403, "forbidden")
        _problem(admin.delete("/v1/blocklist/figures/tom-hanks"), 403, "forbidden")
        _problem(admin.post("/v1/blocklist/rebuild"), 403, "forbidden")
        _problem(admin.get("/v1/blocklist"), 403, "forbidden")
    assert service.guard.blocklists.current().generation == generation


def test_another_tenants_decision_reads_as_no_decision(service: LiveService) -> None:
    """Decision ids are printed in released images' manifests: asking the audit log about one
    must not tell another tenant that it exists, nor where it sits in the log."""
    with service.client("acme", Role.INTEGRATOR) as api:
        decision_id = api.post("/v1/checks", json={"operation": "generate"}).json()["decision"][
            "decision_id"
        ]
    with service.client("globex", Role.AUDITOR) as other:
        theirs = other.get(f"/v1/audit/decisions/{decision_id}/receipt")
        made_up = other.get("/v1/audit/decisions/dec_made_up/receipt")
    assert theirs.status_code == made_up.status_code == 404
    assert theirs.json()["detail"].replace(decision_id, "X") == made_up.json()["detail"].replace(
        "dec_made_up", "X"
    )
