"""Every way the gateway was walked around, replayed against the Envoy ext_authz endpoint with
Tom Hanks on the blocklist: each must be denied (403, the check saw him) or refused (4xx, the
gateway could not account for the image). Nothing here may come back 200.

Plus the end-to-end property: a body of any shape with his photo anywhere in it never passes.
"""

from __future__ import annotations

import base64
import gzip
import json
import urllib.parse
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.api import Role
from guard.samples import sample_bytes
from tests.support.live import LiveFactory, LiveService
from tests.support.registry import blocklist_public_figures

HANKS = sample_bytes("tom_hanks")
B64 = base64.b64encode(HANKS).decode()
DATA_URL = f"data:image/png;base64,{B64}"


@dataclass(frozen=True)
class Attempt:
    name: str
    path: str
    body: bytes
    content_type: str
    expect: tuple[int, str]  # status, problem code
    headers: tuple[tuple[str, str], ...] = ()


def _json(document: object) -> bytes:
    return json.dumps(document).encode()


def _multipart(parts: list[tuple[str, object]]) -> tuple[bytes, str]:
    files = [(n, v) for n, v in parts if isinstance(v, tuple)]
    data = {n: v for n, v in parts if isinstance(v, str)}
    request = httpx.Request("POST", "http://upstream/", data=data, files=files)
    return request.read(), request.headers["content-type"]


def _attempts() -> list[Attempt]:
    deny = (403, "public_figure")
    unrecognised = (422, "unrecognised_image_field")
    ambiguous = (422, "ambiguous_request")
    photo = ("hanks.png", HANKS, "image/png")
    capital_part, capital_type = _multipart([("Image", photo), ("prompt", "p")])
    text_part, text_type = _multipart([("image", B64), ("prompt", "p")])
    other_text, other_type = _multipart([("picture", B64), ("prompt", "p")])
    twice, twice_type = _multipart([("image", photo), ("image", ("b.png", HANKS, "image/png"))])
    openai, openai_type = _multipart([("image[]", photo), ("prompt", "p")])
    return [
        Attempt("the generic shape", "/generate", _json({"image": B64}), "application/json", deny),
        Attempt(
            "image[] as a JSON key",
            "/generate",
            _json({"image[]": B64}),
            "application/json",
            unrecognised,
        ),
        Attempt("image[] multipart to OpenAI", "/v1/images/edits", openai, openai_type, deny),
        Attempt("image[] multipart elsewhere", "/generate", openai, openai_type, unrecognised),
        Attempt(
            "input_image elsewhere",
            "/generate",
            _json({"input_image": B64}),
            "application/json",
            unrecognised,
        ),
        Attempt(
            "input_image to FLUX Kontext",
            "/v1/flux-kontext-pro",
            _json({"prompt": "p", "input_image": B64}),
            "application/json",
            deny,
        ),
        Attempt(
            "Qwen-Image-Edit messages",
            "/api/v1/services/aigc/multimodal-generation/generation",
            _json(
                {
                    "model": "qwen-image-edit",
                    "input": {
                        "messages": [
                            {"role": "user", "content": [{"image": DATA_URL}, {"text": "p"}]}
                        ]
                    },
                }
            ),
            "application/json",
            deny,
        ),
        Attempt(
            "Qwen-Image-Edit messages elsewhere",
            "/generate",
            _json({"input": {"messages": [{"content": [{"image": DATA_URL}]}]}}),
            "application/json",
            unrecognised,
        ),
        Attempt(
            "init_image elsewhere",
            "/generate",
            _json({"init_image": B64}),
            "application/json",
            unrecognised,
        ),
        Attempt(
            "Replicate input.image",
            "/v1/predictions",
            _json({"version": "abc", "input": {"image": DATA_URL, "prompt": "p"}}),
            "application/json",
            deny,
        ),
        Attempt(
            "input.image elsewhere",
            "/generate",
            _json({"input": {"image": B64}}),
            "application/json",
            unrecognised,
        ),
        Attempt(
            "images: [...]", "/generate", _json({"images": [B64]}), "application/json", unrecognised
        ),
        Attempt("a part named Image", "/generate", capital_part, capital_type, unrecognised),
        Attempt("base64 in the image text field", "/generate", text_part, text_type, deny),
        Attempt("base64 in another text field", "/generate", other_text, other_type, unrecognised),
        Attempt("a raw octet-stream body", "/generate", HANKS, "application/octet-stream", deny),
        Attempt("JSON as text/plain", "/generate", _json({"image": B64}), "text/plain", deny),
        Attempt(
            "JSON as form-urlencoded",
            "/generate",
            _json({"image": B64}),
            "application/x-www-form-urlencoded",
            deny,
        ),
        Attempt(
            "two image keys, the figure first",
            "/generate",
            f'{{"image": "{B64}", "image": "{base64.b64encode(_blank()).decode()}"}}'.encode(),
            "application/json",
            ambiguous,
        ),
        Attempt("two image parts", "/generate", twice, twice_type, ambiguous),
        Attempt(
            "gzip-compressed JSON",
            "/generate",
            gzip.compress(_json({"image": B64})),
            "application/json",
            deny,
            (("content-encoding", "gzip"),),
        ),
        Attempt(
            "an image URL",
            "/generate",
            _json({"image": "https://images.example.com/hanks.png"}),
            "application/json",
            (422, "unverifiable_image_reference"),
        ),
        Attempt(
            "a five-million-character operation",
            "/generate",
            _json({"prompt": "p", "operation": "x" * 5_000_000}),
            "application/json",
            (422, "invalid_operation"),
        ),
        Attempt(
            "a lone surrogate in the prompt",
            "/generate",
            b'{"prompt": "\\ud83d relight"}',
            "application/json",
            (422, "invalid_text"),
        ),
        Attempt(
            "more images than the cap",
            "/v1/images/edits",
            _json({"images": [{"image_url": DATA_URL}] * 9, "prompt": "p"}),
            "application/json",
            (422, "too_many_images"),
        ),
        Attempt(
            "an image in the query string",
            f"/generate?image={urllib.parse.quote(B64)}",
            _json({"prompt": "p"}),
            "application/json",
            unrecognised,
        ),
        Attempt(
            "an image in a header",
            "/generate",
            _json({"prompt": "p"}),
            "application/json",
            unrecognised,
            (("x-reference-image", B64),),
        ),
        Attempt(
            "a second gzip member",
            "/generate",
            gzip.compress(b"prompt=a+cat")
            + gzip.compress(b"&image=" + urllib.parse.quote(B64).encode()),
            "application/x-www-form-urlencoded",
            deny,
            (("content-encoding", "gzip"),),
        ),
        Attempt(
            "JSON-looking body declared a form",
            "/generate",
            ('{"a":"&image=' + urllib.parse.quote(B64, safe="") + '&b="}').encode(),
            "application/x-www-form-urlencoded",
            unrecognised,  # the form reading checks the figure; the JSON reading refuses
        ),
        Attempt(
            "an array of bytes where the image goes",
            "/generate",
            _json({"image": list(HANKS)}),
            "application/json",
            unrecognised,
        ),
        Attempt(
            "the figure in the mask",
            "/generate",
            _json({"image": base64.b64encode(_blank()).decode(), "mask": B64}),
            "application/json",
            deny,
        ),
    ]


def _blank() -> bytes:
    """A plain image with no face in it (a mask's companion input)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 180, 160)).save(buffer, "PNG")
    return buffer.getvalue()


def _check(service: LiveService, key: str, attempt: Attempt) -> httpx.Response:
    headers = {"content-type": attempt.content_type, "x-guard-api-key": key}
    headers.update(dict(attempt.headers))
    return httpx.post(
        f"{service.base_url}/v1/ext_authz{attempt.path}",
        headers=headers,
        content=attempt.body,
        timeout=60,
    )


@pytest.fixture
def guarded(live: LiveFactory) -> tuple[LiveService, str]:
    service = live()
    blocklist_public_figures(service.guard)
    return service, service.token("acme", Role.INTEGRATOR)


def test_every_known_bypass_is_denied_or_refused(guarded: tuple[LiveService, str]) -> None:
    service, key = guarded
    failures = []
    for attempt in _attempts():
        before = service.guard.audit.size()
        response = _check(service, key, attempt)
        got = (response.status_code, response.json().get("code"))
        if got != attempt.expect:
            failures.append(f"{attempt.name}: expected {attempt.expect}, got {got}")
        grew = service.guard.audit.size() - before
        if response.status_code == 422 and grew:
            failures.append(f"{attempt.name}: refused, yet {grew} entries were audited")
        if response.status_code == 403 and not grew:
            failures.append(f"{attempt.name}: denied without an audit entry")
    assert not failures, "\n".join(failures)


_names = st.text("abcdefghijklmnopqrstuvwxyz_[]", min_size=1, max_size=10)
_filler = st.recursive(
    st.one_of(st.text(max_size=12), st.integers(), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_names, inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    filler=st.dictionaries(_names, _filler, max_size=4),
    key=_names,
    nest=st.integers(0, 2),
    encoding=st.sampled_from(["base64", "data_url", "file_part", "raw"]),
    label=st.sampled_from(["application/json", "text/plain", "application/octet-stream", ""]),
    path=st.sampled_from(
        ["/generate", "/v1/images/edits", "/v1/predictions", "/v1/flux-kontext-pro"]
    ),
)
def test_no_body_with_the_figure_anywhere_is_allowed(
    guarded: tuple[LiveService, str],
    filler: dict[str, object],
    key: str,
    nest: int,
    encoding: str,
    label: str,
    path: str,
) -> None:
    service, api_key = guarded
    if encoding == "raw":
        body, content_type = HANKS, label
    elif encoding == "file_part":
        body, content_type = _multipart(
            [*((k, json.dumps(v)) for k, v in filler.items()), (key, ("x.png", HANKS, "image/png"))]
        )
    else:
        value: object = B64 if encoding == "base64" else DATA_URL
        for _ in range(nest):
            value = {key: value}
        body, content_type = _json({**filler, key: value}), label
    response = _check(service, api_key, Attempt("property", path, body, content_type, (0, "")))
    assert response.status_code != 200, response.text[:300]
