"""``POST /v1/verify`` finds by fingerprint only the calling key's tenant's stamps, and never a
picture with nothing in it (issue 17). The corpus-wide measurement is
tests/integration/test_false_provenance.py; this is the route's wiring."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from guard.api import Role
from guard.media import RGBImage, encode_image
from guard.policy import Decision, Verdict
from guard.provenance import SoftwareAgent, StampContext
from guard.provenance.fingerprint import measure
from guard.samples import half, natural_photos
from tests.support.live import LiveFactory, LiveService


def _verify(service: LiveService, tenant: str, rgb: RGBImage) -> dict[str, Any]:
    with service.client(tenant, Role.AUDITOR) as api:
        response = api.post(
            "/v1/verify", files={"image": ("x.png", encode_image(rgb, "png"), "image/png")}
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_verify_finds_only_the_callers_stamps_and_no_flat_picture(live: LiveFactory) -> None:
    service = live()
    provenance = service.guard.provenance
    allowed = Decision(Verdict.ALLOW, (), "default", "1", "output")
    context = StampContext(allowed, "generate", SoftwareAgent("gen", "1"), tenant="acme")
    one_pixel = provenance.stamp(np.full((1, 1, 3), 128, np.uint8), "png", context)
    photo = natural_photos()["rocket"]
    copy = half(photo)
    before = _verify(service, "globex", copy)
    assert before["outcome"] == "not_from_this_guard"

    # acme's stamp of the photo, stored as if its watermark had never been there (the mark
    # survives every copy a test can make, so this is how the fingerprint path is reached).
    stored = provenance.store.by_record_id(int(one_pixel.record_id, 16))
    assert stored is not None
    measured = measure(photo)
    provenance.store.save(
        replace(
            stored,
            record_id=provenance.store.new_record_id(),
            output_sha256="1" * 64,
            fingerprint=measured.value,
            fingerprint_information=measured.information,
        )
    )
    own = _verify(service, "acme", copy)
    assert own["outcome"] == "recovered" and own["recovered"]["via"] == "fingerprint"
    assert _verify(service, "globex", copy) == before  # another tenant's stamp: nobody's

    grey = _verify(service, "acme", np.full((300, 400, 3), 128, np.uint8))
    assert grey["outcome"] == "not_from_this_guard" and grey["recovered"] is None
    assert "too little detail" in grey["summary"]
