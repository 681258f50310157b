"""Real request and response bodies of the APIs the gateway adapters read
(``tests/data/gateway/``, described in its README), made concrete with the test's own images.

Each file is either a JSON body as the API's docs show it, or (with a top-level ``"$encoding"``
key) a description of a form or bare-image body. ``"<<IMAGE>>"`` marks every place an image
goes. :data:`BODIES` says, for each file, which adapter reads it, where it is sent (or what
answers it), and how that API carries an image inside JSON or text.

    body, content_type = load_body("openai-edits-json", hanks_png)
    body, content_type = load_body("bfl-flux2", [benign, hanks, benign])  # one per slot
    image_slots("bfl-flux2")  # ('input_image', 'input_image_2', 'input_image_3')
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import httpx

DATA = Path(__file__).resolve().parent.parent / "data" / "gateway"
PLACEHOLDER = "<<IMAGE>>"
ENCODING = "$encoding"

Form = Literal["base64", "data_url"]
Direction = Literal["request", "response"]


@dataclass(frozen=True)
class GatewayBody:
    """One data file: the adapter that reads it, the method and path it is sent to (for a
    response: the request it answers), whether it is a request or a response body, and how
    its API carries an image in JSON or text (``base64`` or a ``data:`` URL)."""

    name: str
    adapter: str
    method: str
    path: str
    direction: Direction
    form: Form


def _body(
    name: str, adapter: str, path: str, direction: Direction = "request", form: Form = "base64"
) -> GatewayBody:
    method = "GET" if path.startswith("GET ") else "POST"
    return GatewayBody(name, adapter, method, path.removeprefix("GET "), direction, form)


_EDITS = "/v1/images/edits"
_KONTEXT = "/v1/flux-kontext-pro"
_QWEN = "/api/v1/services/aigc/multimodal-generation/generation"
_STABILITY_INPAINT = "/v2beta/stable-image/edit/inpaint"

BODIES: Mapping[str, GatewayBody] = MappingProxyType(
    {
        body.name: body
        for body in (
            _body("generic-json", "generic", "/generate"),
            _body("generic-multipart", "generic", "/generate"),
            _body("generic-urlencoded", "generic", "/generate"),
            _body("generic-raw", "generic", "/generate"),
            _body("openai-edits-multipart", "openai-images", _EDITS),
            _body("openai-edits-multipart-image", "openai-images", _EDITS),
            _body("openai-edits-json", "openai-images", _EDITS, form="data_url"),
            _body("openai-variations-multipart", "openai-images", "/v1/images/variations"),
            _body("openai-generations", "openai-images", "/v1/images/generations"),
            _body("openai-response-b64", "openai-images", _EDITS, "response"),
            _body("openai-response-url", "openai-images", _EDITS, "response"),
            _body("bfl-kontext", "bfl-flux", _KONTEXT),
            _body("bfl-flux2", "bfl-flux", "/v1/flux-2-pro"),
            _body("bfl-fill", "bfl-flux", "/v1/flux-pro-1.0-fill"),
            _body("bfl-canny", "bfl-flux", "/v1/flux-pro-1.0-canny"),
            _body("bfl-ultra-redux", "bfl-flux", "/v1/flux-pro-1.1-ultra"),
            _body("bfl-submit", "bfl-flux", _KONTEXT, "response"),
            _body("bfl-result", "bfl-flux", "GET /v1/get_result", "response"),
            _body("dashscope-qwen-image-edit", "dashscope-qwen-image-edit", _QWEN, form="data_url"),
            _body("dashscope-response", "dashscope-qwen-image-edit", _QWEN, "response"),
            _body(
                "replicate-prediction",
                "replicate",
                "/v1/models/black-forest-labs/flux-kontext-pro/predictions",
                form="data_url",
            ),
            _body(
                "replicate-nano-banana",
                "replicate",
                "/v1/models/google/nano-banana/predictions",
                form="data_url",
            ),
            _body("replicate-sdxl-inpaint", "replicate", "/v1/predictions", form="data_url"),
            _body(
                "replicate-response",
                "replicate",
                "GET /v1/predictions/gm3qorzdhgbfurvjtvhg6dckhu",
                "response",
            ),
            _body("stability-inpaint-multipart", "stability", _STABILITY_INPAINT),
            _body(
                "stability-search-and-replace-multipart",
                "stability",
                "/v2beta/stable-image/edit/search-and-replace",
            ),
            _body(
                "stability-style-transfer-multipart",
                "stability",
                "/v2beta/stable-image/control/style-transfer",
            ),
            _body(
                "stability-v1-masking-multipart",
                "stability",
                "/v1/generation/stable-diffusion-v1-6/image-to-image/masking",
            ),
            _body("stability-response-json", "stability", _STABILITY_INPAINT, "response"),
            _body(
                "stability-v1-response",
                "stability",
                "/v1/generation/stable-diffusion-v1-6/image-to-image/masking",
                "response",
            ),
        )
    }
)
"""Every file in ``tests/data/gateway/`` (without ``.json``), by name."""


def load_document(name: str) -> object:
    """The file as stored: a JSON body, or a form / bare-image description."""
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


def image_slots(name: str) -> tuple[str, ...]:
    """Where each ``"<<IMAGE>>"`` of ``name`` sits, in the order :func:`load_body` fills them:
    a JSON path (``images[0].image_url``) or a form part name (``image[]``); ``$`` for a bare
    image body."""
    document = load_document(name)
    if _is_description(document):
        return tuple(slot for slot, _ in _form_slots(document))
    found: list[str] = []
    _json_slots(document, "", found)
    return tuple(found)


def load_body(
    name: str, image: bytes | Sequence[bytes], form: Form | None = None
) -> tuple[bytes, str]:
    """``(body bytes, content type)`` of the data file ``name`` with its images filled in.

    ``image`` fills every slot, or, as a sequence, one slot each in :func:`image_slots` order.
    File parts and a bare body get the raw bytes; an image inside JSON or a text field is
    encoded as ``form`` (default: the API's own, :attr:`GatewayBody.form`), as plain base64
    or as a ``data:`` URL.
    """
    form = form or BODIES[name].form
    document = load_document(name)
    slots = image_slots(name)
    if isinstance(image, bytes):
        images = [image] * len(slots)
    else:
        images = list(image)
        if len(images) != len(slots):
            raise ValueError(f"{name} has {len(slots)} image slots, got {len(images)} images")
    queue = iter(images)
    if not _is_description(document):
        filled = _fill_json(document, queue, form)
        return json.dumps(filled).encode(), "application/json"
    assert isinstance(document, dict)
    encoding = document[ENCODING]
    if encoding == "raw":
        data = next(queue)
        return data, _media_type(data)
    fields: dict[str, str | list[str]] = {}
    for key, value in document.get("fields", {}).items():
        fields[key] = (
            [_fill_text(item, queue, form) for item in value]
            if isinstance(value, list)
            else _fill_text(value, queue, form)
        )
    if encoding == "urlencoded":
        request = httpx.Request("POST", "http://upstream/", data=fields)
        return request.read(), request.headers["content-type"]
    files: list[tuple[str, tuple[str, bytes, str]]] = []
    for key, value in document.get("files", {}).items():
        for item in value if isinstance(value, list) else [value]:
            if item != PLACEHOLDER:
                raise ValueError(f"{name}: a file part holds {item!r}, not {PLACEHOLDER!r}")
            data = next(queue)
            media_type = _media_type(data)
            filename = f"image-{len(files) + 1}.{media_type.split('/')[-1]}"
            files.append((key, (filename, data, media_type)))
    request = httpx.Request("POST", "http://upstream/", data=fields, files=files)
    return request.read(), request.headers["content-type"]


def _is_description(document: object) -> bool:
    return isinstance(document, dict) and ENCODING in document


def _form_slots(document: object) -> list[tuple[str, str]]:
    """``(part name, value)`` for each placeholder: fields first, then files (the order an
    ``httpx`` multipart body has)."""
    assert isinstance(document, dict)
    if document[ENCODING] == "raw":
        return [("$", PLACEHOLDER)]
    slots: list[tuple[str, str]] = []
    for section in ("fields", "files"):
        for key, value in document.get(section, {}).items():
            for item in value if isinstance(value, list) else [value]:
                if item == PLACEHOLDER:
                    slots.append((key, item))
    return slots


def _json_slots(value: object, where: str, found: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _json_slots(item, f"{where}.{key}" if where else key, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _json_slots(item, f"{where}[{index}]", found)
    elif value == PLACEHOLDER:
        found.append(where or "$")


def _fill_json(value: object, queue: Iterator[bytes], form: Form) -> object:
    if isinstance(value, dict):
        return {key: _fill_json(item, queue, form) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill_json(item, queue, form) for item in value]
    if isinstance(value, str):
        return _fill_text(value, queue, form)
    return value


def _fill_text(value: str, queue: Iterator[bytes], form: Form) -> str:
    if value != PLACEHOLDER:
        return value
    data = next(queue)
    encoded = base64.b64encode(data).decode()
    return f"data:{_media_type(data)};base64,{encoded}" if form == "data_url" else encoded


def _media_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return "application/octet-stream"
