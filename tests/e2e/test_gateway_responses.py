"""GuardMiddleware makes an upstream's answer safe to leave: every image in a JSON answer
(OpenAI's ``data[].b64_json``, Stability's ``image`` and ``artifacts[].base64``) or a bare
image answer comes back watermarked and signed in place; an answer it cannot make safe (an
image it denies, an image URL, a stream) is withheld with 502; an answer with no image passes."""

from __future__ import annotations

import base64
import gzip
import io
import json
from collections.abc import Callable

import httpx
import pytest
from PIL import Image, ImageEnhance
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from guard import Guard
from guard.api import GuardMiddleware
from guard.api.gateway import RouteMap
from guard.samples import sample_bytes
from tests.support.gateway_bodies import load_body
from tests.support.guards import GuardFactory
from tests.support.photos import ENROLL, crop
from tests.support.registry import EVIDENCE, blocklist_public_figures

REQUESTER = "acme/studio"
Answer = Callable[[bytes], Response]


def _edited(photo: bytes) -> bytes:
    """What an editor makes of the photo: the same person, a little brighter."""
    image = ImageEnhance.Brightness(Image.open(io.BytesIO(photo)).convert("RGB")).enhance(1.15)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _json_answer(document: object, **headers: str) -> Response:
    return Response(json.dumps(document), media_type="application/json", headers=headers)


def _fill(name: str, image: bytes) -> object:
    body, _ = load_body(name, image, "base64")
    return json.loads(body)


@pytest.fixture
def guard(make_guard: GuardFactory) -> Guard:
    guard = make_guard()
    blocklist_public_figures(guard)
    subject = guard.registry.create_subject("acme", display_name="Model A")
    guard.registry.enroll(subject.id, guard.faces_in(crop("t1", ENROLL)))
    guard.registry.grant(
        subject.id, grantee=REQUESTER, scopes=["prompt_edit"], evidence_sha256=EVIDENCE
    )
    return guard


async def _through(
    guard: Guard, answer: Answer, *, root_path: str = ""
) -> tuple[httpx.Response, bytes]:
    """An OpenAI-style edit of the consenting model's photo, answered by ``answer(input)``
    (the app mounted under ``root_path``, as ``uvicorn --root-path`` does)."""
    photo = crop("t1", ENROLL)

    async def edits(request: Request) -> Response:
        form = await request.form()
        upload = form["image"]
        assert not isinstance(upload, str)
        return answer(await upload.read())

    app = GuardMiddleware(
        Starlette(routes=[Route("/v1/images/edits", edits, methods=["POST"])]),
        guard=guard,
        requester=REQUESTER,
        generator="openai-stub",
        paths={"/v1/images/edits"},
        routes=RouteMap.built_in(),
    )
    body, content_type = load_body("openai-edits-multipart-image", photo)
    transport = httpx.ASGITransport(app=app, root_path=root_path)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.post(
            f"{root_path}/v1/images/edits",
            content=body,
            headers={"content-type": content_type},
            timeout=120,
        )
    return response, photo


def _verify(guard: Guard, encoded: str, decision_id: str) -> None:
    report = guard.verify(base64.b64decode(encoded))
    assert report.outcome.value == "valid", report
    assert report.decision["decision_id"] == decision_id


@pytest.mark.anyio
async def test_openai_b64_json_comes_back_stamped(guard: Guard) -> None:
    def answer(photo: bytes) -> Response:
        return _json_answer(_fill("openai-response-b64", _edited(photo)), etag='"abc"')

    response, _ = await _through(guard, answer)
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["usage"]["total_tokens"] == 100  # the rest of the answer is kept
    assert "etag" not in response.headers
    assert int(response.headers["content-length"]) == len(response.content)
    _verify(guard, document["data"][0]["b64_json"], response.headers["x-guard-decision-id"])


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("stability-response-json", ("image",)),
        ("stability-v1-response", ("artifacts", 0, "base64")),
    ],
)
async def test_other_apis_json_images_come_back_stamped(
    guard: Guard, name: str, where: tuple[str | int, ...]
) -> None:
    response, _ = await _through(guard, lambda photo: _json_answer(_fill(name, _edited(photo))))
    assert response.status_code == 200, response.text
    value: object = response.json()
    for step in where:
        value = value[step]  # type: ignore[index]
    assert isinstance(value, str)
    _verify(guard, value, response.headers["x-guard-decision-id"])


@pytest.mark.anyio
async def test_every_image_of_an_answer_is_stamped(guard: Guard) -> None:
    def answer(photo: bytes) -> Response:
        edited = base64.b64encode(_edited(photo)).decode()
        return _json_answer(
            {"data": [{"b64_json": edited}, {"b64_json": f"data:image/png;base64,{edited}"}]}
        )

    response, _ = await _through(guard, answer)
    assert response.status_code == 200, response.text
    ids = response.headers["x-guard-decision-id"].split(",")
    first, second = (item["b64_json"] for item in response.json()["data"])
    assert second.startswith("data:image/png;base64,")  # each keeps its encoding
    _verify(guard, first, ids[0])
    _verify(guard, second.split(",", 1)[1], ids[1])


@pytest.mark.anyio
async def test_binary_and_compressed_answers_are_stamped(guard: Guard) -> None:
    response, _ = await _through(
        guard, lambda photo: Response(_edited(photo), media_type="image/png")
    )
    assert response.status_code == 200
    assert guard.verify(response.content).outcome.value == "valid"

    def zipped(photo: bytes) -> Response:
        document = _fill("openai-response-b64", _edited(photo))
        return Response(
            gzip.compress(json.dumps(document).encode()),
            media_type="application/json",
            headers={"content-encoding": "gzip"},
        )

    response, _ = await _through(guard, zipped)
    assert response.status_code == 200, response.text
    assert "content-encoding" not in response.headers
    _verify(guard, response.json()["data"][0]["b64_json"], response.headers["x-guard-decision-id"])


@pytest.mark.anyio
async def test_an_answer_showing_a_public_figure_is_withheld(guard: Guard) -> None:
    hanks = sample_bytes("tom_hanks")
    response, _ = await _through(guard, lambda _: _json_answer(_fill("openai-response-b64", hanks)))
    assert response.status_code == 502
    problem = response.json()
    assert problem["decision"]["verdict"] == "deny"
    assert problem["code"] == "output_public_figure"
    assert response.headers["content-type"] == "application/problem+json"
    assert base64.b64encode(hanks).decode()[:200] not in response.text


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (lambda _: _json_answer(_fill("openai-response-url", b"")), "output_not_stampable"),
        (
            lambda photo: Response(
                "data: "
                + json.dumps({"b64_json": base64.b64encode(_edited(photo)).decode()})
                + "\n\n",
                media_type="text/event-stream",
            ),
            "output_not_stampable",
        ),
        (
            lambda _: Response(b"\x00\x01binary" * 50, media_type="application/octet-stream"),
            "output_not_stampable",
        ),
        (
            lambda _: _json_answer(
                {"result": '{"nested": "' + base64.b64encode(sample_bytes("t1")).decode() + '"}'}
            ),
            "output_not_stampable",
        ),
        (lambda _: _json_answer({"data": [{"url": "/files/out.png"}]}), "output_not_stampable"),
        (
            lambda _: _json_answer({"result": "cdn.example.com/x/out.webp?sig=1"}),
            "output_not_stampable",
        ),
        (
            lambda _: Response(status_code=303, headers={"location": "https://cdn.example/o.png"}),
            "output_not_stampable",
        ),
        (
            lambda photo: _json_answer(
                {"ok": True}, **{"x-result": base64.b64encode(_edited(photo)).decode()}
            ),
            "output_not_stampable",
        ),
        (
            lambda _: _json_answer({"data": list(sample_bytes("tom_hanks"))}),
            "output_not_stampable",
        ),
    ],
    ids=[
        "image-url",
        "event-stream",
        "opaque-binary",
        "nested-json",
        "relative-url",
        "scheme-less-url",
        "redirect",
        "image-in-a-header",
        "byte-array",
    ],
)
async def test_answers_the_guard_cannot_make_safe_are_withheld(
    guard: Guard, answer: Answer, code: str
) -> None:
    response, _ = await _through(guard, answer)
    assert response.status_code == 502, response.text
    assert response.json()["code"] == code


@pytest.mark.anyio
async def test_answers_without_new_images_pass_unchanged(guard: Guard) -> None:
    queued = {"id": "img_123", "status": "queued", "usage": {"total_tokens": 3}}
    response, _ = await _through(guard, lambda _: _json_answer(queued))
    assert response.status_code == 200
    assert response.json() == queued
    assert "x-guard-watermark-record" not in response.headers

    # The request's own image echoed back was checked on the way in: it is left as it is.
    def echo(photo: bytes) -> Response:
        return _json_answer({"input": {"image": base64.b64encode(photo).decode()}})

    response, photo = await _through(guard, echo)
    assert response.status_code == 200
    assert base64.b64decode(response.json()["input"]["image"]) == photo


@pytest.mark.anyio
async def test_every_gzip_member_of_an_answer_is_read(guard: Guard) -> None:
    def two_members(photo: bytes) -> Response:
        document = json.dumps(_fill("openai-response-b64", _edited(photo))).encode()
        half = len(document) // 2
        return Response(
            gzip.compress(document[:half]) + gzip.compress(document[half:]),
            media_type="application/json",
            headers={"content-encoding": "gzip"},
        )

    response, _ = await _through(guard, two_members)
    assert response.status_code == 200, response.text
    _verify(guard, response.json()["data"][0]["b64_json"], response.headers["x-guard-decision-id"])


@pytest.mark.anyio
async def test_an_app_under_a_root_path_is_still_guarded(guard: Guard) -> None:
    hanks = sample_bytes("tom_hanks")
    response, _ = await _through(
        guard, lambda _: _json_answer(_fill("openai-response-b64", hanks)), root_path="/api"
    )
    assert response.status_code == 502, "the answer went out unscanned"
