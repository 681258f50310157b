"""The person's pages in a real browser: Debian's chromium driven by Playwright, against the
real service over uvicorn on a PostgreSQL database. One service and one browser for the whole
package, per pytest worker (each costs seconds: a database copy, a guard, a server, a browser);
each test opens its own browser context (its own cookies) and uses its own tenant, so tests do
not see each other.

Chromium's fake camera plays a Y4M file written from the astronaut photo, so the camera path
sees a real face. axe-core comes from tests/interop/node_modules (the Makefile installs it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from guard import Guard
from guard.api import create_app
from guard.bootstrap import initialise
from guard.config import Settings
from guard.faces import FaceEngine
from guard.samples import sample_rgb
from guard.web import RedeemLimit
from tests.support.databases import postgres_database
from tests.support.live import LiveService, serve

AXE = Path(__file__).parents[1] / "interop" / "node_modules" / "axe-core" / "axe.min.js"


def _required(problem: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{problem}; CI must run the browser tests")
    pytest.skip(f"!!! SKIPPED: {problem}")


@dataclass
class WebService(LiveService):
    app: FastAPI | None = None


def write_y4m(rgb: np.ndarray, path: Path, frames: int = 10) -> Path:
    """``rgb`` letterboxed into 640x480 (the fake camera's own size, so Chromium does not
    stretch it) as a short 4:2:0 Y4M clip (what the fake camera plays, in a loop)."""
    height, width = rgb.shape[:2]
    scale = min(640 / width, 480 / height)
    fitted = cv2.resize(rgb, (int(width * scale) // 2 * 2, int(height * scale) // 2 * 2))
    frame = np.full((480, 640, 3), 128, np.uint8)
    top, left = (480 - fitted.shape[0]) // 2, (640 - fitted.shape[1]) // 2
    frame[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted
    rgb, (height, width) = frame, frame.shape[:2]
    planes = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420).tobytes()
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + planes)
    return path


@pytest.fixture(scope="package")
def web(
    postgres_server: str,
    postgres_template: str,
    face_engine: FaceEngine,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WebService]:
    """The service on a PostgreSQL database of its own."""
    with postgres_database(postgres_server, template=postgres_template) as url:
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("web-var"), database_url=url, api_rate_burst=10_000
        )
        initialise(settings, face_engine)
        guard = Guard(settings, face_engine=face_engine)
        app = create_app(guard=guard)
        # Every test's browser comes from 127.0.0.1: one bucket for the whole package would run
        # dry. The rate-limit tests set a tight limit of their own and put this one back.
        app.state.web_redeem_limit = RedeemLimit(rate_per_second=100, burst=10_000, name="web")
        running = serve(app)
        try:
            yield WebService(guard, next(running), app=app)
        finally:
            next(running, None)
            guard.close()


@pytest.fixture(scope="package")
def camera_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_y4m(sample_rgb("astronaut"), tmp_path_factory.mktemp("camera") / "face.y4m")


@pytest.fixture(scope="package")
def browser(camera_file: Path) -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        _required("chromium is not installed (make installs it with apt-get)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            args=[
                "--no-sandbox",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={camera_file}",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser, web: WebService) -> Iterator[BrowserContext]:
    """A fresh context (cookies of its own) at phone width, relative URLs on the service."""
    opened = browser.new_context(viewport={"width": 390, "height": 844}, base_url=web.base_url)
    opened.set_default_timeout(20_000)
    yield opened
    opened.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture(scope="package")
def axe_source() -> str:
    if not AXE.is_file():
        _required(f"{AXE} is missing (make installs tests/interop with npm)")
    return AXE.read_text()
