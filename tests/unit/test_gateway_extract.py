"""Reading a generation request the way a gateway sees it: JSON, multipart, bare image."""

from __future__ import annotations

import base64
import contextlib
import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guard.api.gateway import extract_request
from guard.errors import InvalidInput

PNG = b"\x89PNG\r\n\x1a\nfake"


@pytest.mark.anyio
async def test_json_with_base64_or_data_url() -> None:
    for value in (
        base64.b64encode(PNG).decode(),
        "data:image/png;base64," + base64.b64encode(PNG).decode(),
    ):
        body = json.dumps({"prompt": "p", "image": value, "operation": "relight"}).encode()
        asked = await extract_request("application/json; charset=utf-8", body)
        assert (asked.image, asked.prompt, asked.operation) == (PNG, "p", "relight")


@pytest.mark.anyio
async def test_multipart_and_bare_image_and_other() -> None:
    request = httpx.Request(
        "POST",
        "http://x/",
        data={"prompt": "hi", "operation": "relight"},
        files={"image": ("a.png", PNG, "image/png")},
    )
    asked = await extract_request(request.headers["content-type"], request.read())
    assert (asked.image, asked.prompt, asked.operation) == (PNG, "hi", "relight")
    assert (await extract_request("image/png", PNG)).image == PNG
    assert await extract_request("text/plain", b"hello") == await extract_request("", b"")


@pytest.mark.anyio
async def test_bad_base64_and_bad_json_are_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        await extract_request("application/json", b'{"image": "not base64!!"}')
    with pytest.raises(InvalidInput):
        await extract_request("application/json", b"{nope")


@settings(max_examples=200, deadline=None)
@given(
    body=st.binary(max_size=2000),
    content_type=st.sampled_from(
        ["application/json", "multipart/form-data; boundary=xyz", "image/png", "text/plain", ""]
    ),
)
def test_any_body_parses_or_raises_invalid_input(body: bytes, content_type: str) -> None:
    import anyio

    with contextlib.suppress(InvalidInput):
        anyio.run(extract_request, content_type, body)
