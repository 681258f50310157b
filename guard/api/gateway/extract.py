"""What a generation request asks for, read from its body as a gateway sees it.

Understood shapes: JSON (``prompt``, ``image`` as base64 or a ``data:`` URL, ``operation``),
multipart form data (an ``image`` file part, ``prompt`` and ``operation`` fields) and a bare
image body. Anything else carries neither image nor prompt, and is checked as such.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from guard.errors import InvalidInput


@dataclass(frozen=True)
class GatewayRequest:
    image: bytes | None
    prompt: str
    operation: str | None


def _gateway_request(image: bytes | None, prompt: object, operation: object) -> GatewayRequest:
    """Only string members count: anything else reads as absent."""
    return GatewayRequest(
        image or None,
        prompt if isinstance(prompt, str) else "",
        operation if isinstance(operation, str) and operation else None,
    )


def _decode_base64_image(value: str) -> bytes:
    if value.startswith("data:"):
        value = value.split(",", 1)[-1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("the 'image' member is not valid base64") from exc


def _from_json(body: bytes) -> GatewayRequest:
    try:
        data = json.loads(body or b"{}")
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"the JSON body cannot be parsed: {exc}") from exc
    if not isinstance(data, dict):
        return GatewayRequest(None, "", None)
    image = data.get("image")
    return _gateway_request(
        _decode_base64_image(image) if isinstance(image, str) and image else None,
        data.get("prompt"),
        data.get("operation"),
    )


async def _from_multipart(content_type: str, body: bytes) -> GatewayRequest:
    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        form = await MultiPartParser(Headers({"content-type": content_type}), stream()).parse()
    except MultiPartException as exc:
        raise InvalidInput(f"the multipart body cannot be parsed: {exc.message}") from exc
    image = form.get("image")
    data = await image.read() if isinstance(image, UploadFile) else None
    await form.close()
    return _gateway_request(data, form.get("prompt"), form.get("operation"))


async def extract_request(content_type: str, body: bytes) -> GatewayRequest:
    media_type = content_type.split(";", maxsplit=1)[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        return _from_json(body)
    if media_type == "multipart/form-data":
        return await _from_multipart(content_type, body)
    if media_type.startswith("image/") and body:
        return GatewayRequest(body, "", None)
    return GatewayRequest(None, "", None)
