"""``POST /v1/checks`` takes a JSON body for a check without an image (a prompt only), the same
fields as the multipart ``params`` part; an image still travels as multipart. Unknown fields
and other content types are refused with a typed problem, and nothing is decided or audited."""

from __future__ import annotations

import json

import httpx

from guard.api import Role
from guard.samples import sample_bytes
from tests.support.live import LiveFactory, LiveService, image_part, params

PROBLEM = "application/problem+json"


def _problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == code


def _audit_size(service: LiveService) -> int:
    return service.guard.audit.size()


def test_a_json_body_checks_a_prompt(live: LiveFactory) -> None:
    service = live()
    service.guard.blocklists.update(
        lambda blocklist: blocklist.add_figure(
            "tom-hanks",
            "Tom Hanks",
            [service.guard.faces_in(sample_bytes("tom_hanks"))[0].embedding],
        )
    )
    with service.client() as api:
        allowed = api.post("/v1/checks", json={"operation": "generate", "prompt": "a red bicycle"})
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["decision"]["reason_codes"] == ["no_faces"]
        assert allowed.json()["receipt"]["leaf_index"] >= 0

        denied = api.post("/v1/checks", json={"operation": "generate", "prompt": "Tom Hanks"})
        _problem(denied, 403, "prompt_names_public_figure")
        assert denied.json()["decision"]["verdict"] == "deny"

        # The same question as form data gets the same answer.
        form = api.post("/v1/checks", data=params(operation="generate", prompt="Tom Hanks"))
        _problem(form, 403, "prompt_names_public_figure")


def test_bad_json_checks_are_typed_errors_that_change_nothing(live: LiveFactory) -> None:
    service = live()
    with service.client() as api:
        before = _audit_size(service)
        unknown = api.post("/v1/checks", json={"operation": "generate", "promt": "typo"})
        _problem(unknown, 422, "invalid_request")
        assert ["body", "promt"] in [error["loc"] for error in unknown.json()["errors"]]

        # An image does not travel inside JSON: that is what multipart is for.
        inline = api.post("/v1/checks", json={"operation": "relight", "image": "aGVsbG8="})
        _problem(inline, 422, "invalid_request")

        missing = api.post("/v1/checks", json={"prompt": "no operation"})
        _problem(missing, 422, "invalid_request")
        assert ["body", "operation"] in [error["loc"] for error in missing.json()["errors"]]

        for body in (b"{not json", b"[]", b""):
            broken = api.post(
                "/v1/checks", content=body, headers={"content-type": "application/json"}
            )
            _problem(broken, 422, "invalid_request")

        plain = api.post(
            "/v1/checks",
            content=json.dumps({"operation": "generate"}),
            headers={"content-type": "text/plain"},
        )
        _problem(plain, 415, "unsupported_media")
        untyped = api.post("/v1/checks", content=b'{"operation": "generate"}')
        _problem(untyped, 415, "unsupported_media")

        extra_part = api.post(
            "/v1/checks", data={**params(operation="generate"), "prompt": "beside params"}
        )
        _problem(extra_part, 400, "invalid_input")
        no_params = api.post("/v1/checks", files=image_part())
        _problem(no_params, 400, "invalid_input")
        text_image = api.post("/v1/checks", data={**params(operation="relight"), "image": "x"})
        _problem(text_image, 400, "invalid_input")
        assert _audit_size(service) == before


def test_an_image_check_still_goes_as_multipart(live: LiveFactory) -> None:
    service = live()
    with service.client() as api:
        checked = api.post("/v1/checks", data=params(operation="relight"), files=image_part())
        _problem(checked, 403, "no_consent")  # the astronaut: nobody enrolled her
        assert len(checked.json()["decision"]["faces"]) == 1
    with service.client(role=Role.AUDITOR) as auditor:
        # Roles are checked before the body is read.
        refused = auditor.post("/v1/checks", json={"operation": "generate"})
        _problem(refused, 403, "forbidden")


def test_the_schema_documents_both_bodies(live: LiveFactory) -> None:
    service = live()
    schema = httpx.get(f"{service.base_url}/openapi.json").json()
    content = schema["paths"]["/v1/checks"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}
    as_json = content["application/json"]["schema"]
    assert set(as_json["properties"]) == {"operation", "prompt"}
    assert as_json["additionalProperties"] is False and as_json["required"] == ["operation"]
    assert set(content["multipart/form-data"]["schema"]["properties"]) == {"params", "image"}
