"""What reading a request the fail-closed way costs (issue 16).

The gateway parses every body strictly and reads every string and part by its content, so that
no image passes unaccounted for. This times ``parse_body`` + ``claim_request`` (the whole
reading step of ``GatewayFlow.check_request``) on real-shaped bodies of each API
(``tests/data/gateway/``) carrying real photos, against the minimum any reader must do with the
same body (the baseline): ``json.loads`` and a base64 decode of the images, or python-multipart's
own form parser (what Starlette runs). For scale, the last column is one ``Guard.check`` of the
image (the face pass the reading step feeds).

Usage: ``python bench/gateway.py``
"""

from __future__ import annotations

import asyncio
import base64
import json
import platform
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from starlette.datastructures import Headers
from starlette.formparsers import MultiPartParser
from timing import median_ms

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from guard import Guard
from guard.api.gateway.adapters import adapter_named
from guard.api.gateway.body import parse_body
from guard.api.gateway.claims import claim_request
from guard.bootstrap import initialise
from guard.config import Settings
from guard.requests import CheckRequest
from guard.samples import sample_bytes
from tests.support.gateway_bodies import BODIES, image_slots, load_body

MAX = 128 * 1024 * 1024
CASES = (
    ("generic-json", "t1"),
    ("openai-edits-json", "t1"),
    ("openai-edits-multipart", "t1"),
    ("bfl-flux2", "t1"),
    ("dashscope-qwen-image-edit", "astronaut"),
    ("replicate-nano-banana", "astronaut"),
    ("stability-inpaint-multipart", "astronaut"),
)


def _baseline(body: bytes, content_type: str) -> Callable[[], object]:
    if content_type.startswith("multipart/"):

        async def parse() -> object:
            async def stream():  # type: ignore[no-untyped-def]
                yield body

            parser = MultiPartParser(
                Headers({"content-type": content_type}), stream(), max_part_size=MAX
            )
            form = await parser.parse()
            for value in form.values():
                if not isinstance(value, str):
                    await value.read()
            return form

        return lambda: asyncio.run(parse())

    def decode() -> object:
        def walk(value: object) -> None:
            if isinstance(value, dict):
                for item in value.values():
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)
            elif isinstance(value, str) and len(value) > 1000:
                base64.b64decode(value.split(",", 1)[-1])

        walk(json.loads(body))
        return None

    return decode


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), nsfw_classifier="none")
        guard = Guard(settings)
        initialise(settings, guard.face_engine)
        for name, sample in CASES:
            photo = sample_bytes(sample)  # type: ignore[arg-type]
            body, content_type = load_body(name, photo)
            adapter = adapter_named(BODIES[name].adapter)
            headers = {"content-type": content_type}

            def read(body: bytes = body, headers: dict[str, str] = headers) -> object:
                parsed = parse_body(headers, body, max_bytes=MAX)
                return claim_request(adapter, parsed, max_images=8)  # noqa: B023

            ours = median_ms(read, repeats=15)
            base = median_ms(_baseline(body, content_type), repeats=15)
            check = median_ms(
                lambda photo=photo: guard.check(
                    CheckRequest(requester="bench/app", operation="generate", image=photo)
                ),
                repeats=3,
            )
            rows.append((name, sample, len(image_slots(name)), len(body), ours, base, check))
        guard.close()
    machine = f"{platform.machine()}, Python {platform.python_version()}"
    print(f"# gateway reading, {date.today()}, {machine}")
    print(
        "| body | photo | images | body bytes | read + claim ms | baseline ms | ratio "
        "| one check ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, sample, images, size, ours, base, check in rows:
        print(
            f"| {name} | {sample} | {images} | {size:,} | {ours:.2f} | {base:.2f} | "
            f"{ours / base:.2f}× | {check:.0f} |"
        )
    print(f"\nmeasured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
