"""Each adapter with realistic bodies of its API (tests/data/gateway/), through the Envoy
ext_authz endpoint: Tom Hanks in any one image-bearing field denies the whole request; a
consenting person in every field is allowed."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from guard.api import ApiKeyStore, Role
from guard.samples import sample_bytes
from tests.support.gateway_bodies import BODIES, image_slots, load_body
from tests.support.live import LiveFactory, LiveService
from tests.support.photos import ENROLL, crop
from tests.support.registry import EVIDENCE, blocklist_public_figures

HANKS = sample_bytes("tom_hanks")
_KEYS: dict[tuple[str, str], str] = {}
REQUESTS = sorted(name for name, body in BODIES.items() if body.direction == "request")


@pytest.fixture(scope="module")
def consenting() -> bytes:
    return crop("t1", ENROLL)


@pytest.fixture
def service(live: LiveFactory, consenting: bytes) -> LiveService:
    service = live()
    guard = service.guard
    blocklist_public_figures(guard)
    subject = guard.registry.create_subject("acme", display_name="Model A")
    guard.registry.enroll(subject.id, guard.faces_in(consenting))
    guard.registry.grant(
        subject.id,
        grantee="acme/app",
        scopes=["prompt_edit", "generate", "relight"],
        evidence_sha256=EVIDENCE,
    )
    return service


def _send(service: LiveService, name: str, body: bytes, content_type: str) -> httpx.Response:
    """Each body with its own key: the many denials here would otherwise trip the policy's
    usage monitoring, which throttles a key that is denied too often."""
    spec = BODIES[name]
    keys = ApiKeyStore(service.guard.db)
    key = _KEYS.setdefault(
        (service.base_url, name),
        keys.create(tenant="acme", role=Role.INTEGRATOR, requester="acme/app").token,
    )
    return httpx.request(
        spec.method,
        f"{service.base_url}/v1/ext_authz{spec.path}",
        headers={"content-type": content_type, "x-guard-api-key": key},
        content=body,
        timeout=60,
    )


def _reencoded(photo: bytes, level: int) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(photo)).save(buffer, "PNG", compress_level=9 - level)
    return buffer.getvalue()


def _faceless() -> bytes:
    """A plain photo-sized image with no face: the other slots' filler (checked, and fast)."""
    buffer = io.BytesIO()
    Image.new("RGB", (96, 96), (120, 160, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def test_the_figure_in_any_image_field_denies(service: LiveService) -> None:
    filler = _faceless()
    failures = []
    checked = 0
    for name in REQUESTS:
        slots = image_slots(name)
        for index, slot in enumerate(slots):
            images = [filler] * len(slots)
            images[index] = HANKS
            # The API's own encoding in every slot; the other one (base64 for a data URL and
            # back) in the first, where it matters only for JSON and text fields.
            for form in (BODIES[name].form, *(("base64", "data_url") if index == 0 else ())):
                response = _send(service, name, *load_body(name, images, form))
                checked += 1
                got = (response.status_code, response.json().get("code"))
                if got != (403, "public_figure"):
                    failures.append(f"{name} {slot} ({form}): {got}")
    assert checked >= 60
    assert not failures, "\n".join(failures)


def test_a_consenting_person_in_every_field_is_allowed(
    service: LiveService, consenting: bytes
) -> None:
    failures = []
    for name in REQUESTS:
        # One distinct file per slot (the same pixels, encoded differently): identical images
        # are checked once.
        variants = [_reencoded(consenting, level) for level in range(len(image_slots(name)))]
        response = _send(service, name, *load_body(name, variants))
        if response.status_code != 200:
            failures.append(f"{name}: {response.status_code} {response.text[:200]}")
            continue
        ids = response.json()["decision_ids"]
        if len(ids) != max(1, len(image_slots(name))):
            failures.append(f"{name}: {len(ids)} decisions for {len(image_slots(name))} images")
    assert not failures, "\n".join(failures)
