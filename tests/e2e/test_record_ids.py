"""A watermark record id reads the same wherever it is shown: the library's ``Result``, the
audit entry its receipt points at (served by the API), the API's own edits and ``verify``."""

from __future__ import annotations

import base64
import re

from guard import EditRequest
from guard.api import Role
from guard.samples import sample_bytes
from tests.support.live import LiveFactory, image_part, params

RECORD_ID = re.compile(r"^[0-9a-f]{12}$")


def test_library_and_api_show_one_record_id(live: LiveFactory) -> None:
    service = live()
    # A photo without a face: the default policy allows editing it, so it is stamped.
    result = service.guard.edit(
        EditRequest(image=sample_bytes("coffee"), operation="color_grade", requester="acme/app")
    )
    assert result.provenance is not None and result.image is not None
    library_id = result.provenance.record_id
    assert RECORD_ID.match(library_id), library_id
    release = result.receipts[-1]  # input decision, output decision, release

    with service.client() as api, service.client(role=Role.AUDITOR) as auditor:
        entry = auditor.get(f"/v1/audit/entries/{release.leaf_index}")
        assert entry.status_code == 200, entry.text
        assert entry.json()["entry"]["kind"] == "release"
        assert entry.json()["entry"]["watermark_record_id"] == library_id

        verified = api.post("/v1/verify", files={"image": ("out.png", result.image, "image/png")})
        assert verified.status_code == 200, verified.text
        assert verified.json()["watermark"]["record_id"] == library_id

        # The other way round: an edit made over the API, read back through the library.
        edited = api.post(
            "/v1/edits", data=params(operation="color_grade"), files=image_part("coffee")
        )
        assert edited.status_code == 200, edited.text
        api_id = edited.json()["provenance"]["watermark_record_id"]
        assert RECORD_ID.match(api_id) and api_id != library_id
        stamped = base64.b64decode(edited.json()["image"]["data_base64"])
        report = service.guard.verify(stamped)
        assert report.watermark is not None and report.watermark.record_id == api_id
        released = edited.json()["receipts"][-1]["leaf_index"]
        assert service.guard.audit.entry(released)["watermark_record_id"] == api_id
