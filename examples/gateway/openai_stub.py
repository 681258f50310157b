"""A stand-in for the OpenAI Images API, for trying the Envoy chain without an account:
``POST /v1/images/edits`` and ``POST /v1/images/generations``, answered in the
``ImagesResponse`` shape (``{"created": ..., "data": [{"b64_json": ...}], "usage": {...}}``).

    .venv/bin/python -m examples.gateway.openai_stub --port 9000

An edit returns the input made a little brighter (every channel +5), so the face in it is
still the same person; a generation returns a face-free abstract picture drawn from the
prompt. It knows nothing of the guard: Envoy's ext_proc filter puts the guard around it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import time
from typing import Any

import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MAX_SIDE = 1536


def _error(status: int, message: str, param: str | None = None) -> JSONResponse:
    """OpenAI's error shape."""
    return JSONResponse(
        {"error": {"message": message, "type": "invalid_request_error", "param": param}},
        status_code=status,
    )


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _images_response(pngs: list[bytes], prompt: str) -> JSONResponse:
    return JSONResponse(
        {
            "created": int(time.time()),
            "data": [{"b64_json": base64.b64encode(png).decode("ascii")} for png in pngs],
            "usage": {
                "input_tokens": len(prompt.split()),
                "output_tokens": 272 * len(pngs),
                "total_tokens": len(prompt.split()) + 272 * len(pngs),
            },
        }
    )


def brighter(data: bytes, amount: int = 5) -> bytes:
    """The input as a PNG with every colour channel raised by ``amount``."""
    with Image.open(io.BytesIO(data)) as opened:
        rgb = opened.convert("RGB")
    pixels = np.asarray(rgb, dtype=np.int16) + amount
    return _png(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB"))


def abstract_picture(prompt: str, width: int = 512, height: int = 512) -> bytes:
    """Soft colour bands and discs picked from the prompt's hash: no face in it."""
    seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    picture = np.zeros((height, width, 3), dtype=np.float32)
    for channel in range(3):
        angle, frequency = rng.uniform(0, np.pi), rng.uniform(0.004, 0.02)
        wave = np.sin((xs * np.cos(angle) + ys * np.sin(angle)) * frequency * 2 * np.pi)
        picture[..., channel] = 128 + 90 * wave
    for _ in range(6):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        radius = rng.uniform(0.05, 0.2) * min(width, height)
        disc = ((xs - cx) ** 2 + (ys - cy) ** 2) < radius**2
        picture[disc] = rng.uniform(30, 225, size=3)
    return _png(Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8), "RGB"))


def _size(value: Any) -> tuple[int, int]:
    if not isinstance(value, str) or value in ("", "auto"):
        return 512, 512
    width, _, height = value.partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise ValueError(f"size {value!r} is not WIDTHxHEIGHT")
    return min(int(width), MAX_SIDE), min(int(height), MAX_SIDE)


def _count(value: Any) -> int:
    try:
        return max(1, min(int(value or 1), 4))
    except (TypeError, ValueError):
        return 1


async def edits(request: Request) -> Response:
    content_type = request.headers.get("content-type", "")
    images: list[bytes] = []
    if content_type.startswith("application/json"):
        body = json.loads(await request.body() or b"{}")
        prompt, count = str(body.get("prompt") or ""), _count(body.get("n"))
        for ref in body.get("images") or []:
            url = str(ref.get("image_url") or "") if isinstance(ref, dict) else ""
            if not url.startswith("data:"):
                return _error(400, "the stub reads base64 data URLs only", "images")
            images.append(base64.b64decode(url.partition(",")[2]))
    else:
        form = await request.form()
        prompt, count = str(form.get("prompt") or ""), _count(form.get("n"))
        for name in ("image", "image[]"):
            for part in form.getlist(name):
                if isinstance(part, UploadFile):
                    images.append(await part.read())
    if not images:
        return _error(400, "an image is required", "image")
    if not prompt:
        return _error(400, "a prompt is required", "prompt")
    try:
        edited = brighter(images[0])
    except OSError:
        return _error(400, "the image cannot be read", "image")
    return _images_response([edited] * count, prompt)


async def generations(request: Request) -> Response:
    body = json.loads(await request.body() or b"{}")
    prompt = str(body.get("prompt") or "")
    if not prompt:
        return _error(400, "a prompt is required", "prompt")
    try:
        width, height = _size(body.get("size"))
    except ValueError as exc:
        return _error(400, str(exc), "size")
    count = _count(body.get("n"))
    return _images_response(
        [abstract_picture(f"{prompt}#{i}", width, height) for i in range(count)], prompt
    )


async def models(_request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [{"id": "gpt-image-1", "object": "model"}]})


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/v1/images/edits", edits, methods=["POST"]),
            Route("/v1/images/generations", generations, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )


app = create_app()


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args(argv)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
