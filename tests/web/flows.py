"""What the integrator does around the person's pages, over the real HTTP API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guard.samples import SampleName, sample_bytes
from tests.support.live import LiveService, image_part, params


def photo_file(tmp_path: Path, name: SampleName) -> Path:
    """A sample photo as a file the browser uploads."""
    suffix = ".jpg" if name == "t1" else ".png"
    path = tmp_path / f"{name}{suffix}"
    path.write_bytes(sample_bytes(name))
    return path


def enrolled_subject(service: LiveService, tenant: str, sample: SampleName = "astronaut") -> str:
    """A subject of ``tenant`` enrolled (by the integrator) from ``sample``."""
    with service.client(tenant) as api:
        subject = api.post("/v1/subjects", json={"display_name": "Eileen"})
        assert subject.status_code == 201, subject.text
        subject_id = str(subject.json()["id"])
        enrolled = api.post(f"/v1/subjects/{subject_id}/faces", files=image_part(sample))
        assert enrolled.status_code == 201, enrolled.text
    return subject_id


def confirmation_link(service: LiveService, tenant: str) -> tuple[str, str]:
    """An attested grant of ``tenant`` for a new enrolled subject, and the one-time link
    (``lgc_`` token) the integrator asks for so the person can confirm it."""
    subject_id = enrolled_subject(service, tenant)
    with service.client(tenant) as api:
        granted = api.post(
            "/v1/consents",
            json={"subject_id": subject_id, "scopes": ["relight"], "evidence_sha256": "b" * 64},
        )
        assert granted.status_code == 201, granted.text
        grant_id = str(granted.json()["id"])
        asked = api.post(f"/v1/consents/{grant_id}/confirmation", json={})
        assert asked.status_code in (200, 201), asked.text
    return grant_id, str(asked.json()["token"])


def consent_request(service: LiveService, tenant: str, **body: Any) -> dict[str, Any]:
    """A consent request of ``tenant`` (``subject_id=`` or a new subject), as created."""
    payload: dict[str, Any] = {
        "requester_display_name": "Acme Photo",
        "tenant_display_name": "Acme Ltd",
        "scopes": ["relight"],
        "duration_days": 30,
        "message": "For the spring catalogue.",
        **body,
    }
    if "subject_id" not in payload:
        payload.setdefault("new_subject", {"display_name": "New person"})
    with service.client(tenant) as api:
        created = api.post("/v1/consent-requests", json=payload)
    assert created.status_code == 201, created.text
    result: dict[str, Any] = created.json()
    return result


def request_status(service: LiveService, tenant: str, request_id: str) -> dict[str, Any]:
    with service.client(tenant) as api:
        found = api.get(f"/v1/consent-requests/{request_id}")
    assert found.status_code == 200, found.text
    result: dict[str, Any] = found.json()
    return result


def check(service: LiveService, tenant: str, sample: SampleName = "astronaut") -> Any:
    """The integrator's pre-generation check of ``sample`` for ``relight``."""
    with service.client(tenant) as api:
        return api.post("/v1/checks", data=params(operation="relight"), files=image_part(sample))


def consent_levels(decision: dict[str, Any]) -> set[str]:
    return {
        str(reason["evidence"]["consent_level"])
        for face in decision["faces"]
        for reason in face["reasons"]
        if "consent_level" in reason.get("evidence", {})
    }


def accept_in_browser(page: Any, url: str, photo: Path) -> str:
    """The person accepts the request at ``url`` with ``photo``: their management link."""
    page.goto(url)
    page.get_by_label("A photo of your face, on its own").set_input_files(photo)
    page.get_by_role("button", name="Yes, I agree").click()
    page.get_by_role("heading", name="Thank you: you agreed").wait_for()
    return str(page.locator("#me-link").input_value())
