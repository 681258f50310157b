"""Swagger UI (/docs) and ReDoc (/redoc) work offline: every script, style and icon they load
is served by the guard itself, with the right content type."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.live import LiveFactory

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
KIND = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_load_nothing_from_elsewhere(live: LiveFactory, page: str) -> None:
    service = live()
    with httpx.Client(base_url=service.base_url, timeout=30) as client:
        html = client.get(page)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assets = ASSET.findall(html.text)
        assert any(url.endswith(".js") for url in assets), html.text
        for url in assets:
            assert url.startswith("/") and not url.startswith("//"), f"{page} loads {url}"
            asset = client.get(url)
            assert asset.status_code == 200, url
            suffix = url[url.rfind(".") :]
            assert KIND[suffix] in asset.headers["content-type"], (url, asset.headers)
            assert len(asset.content) > 1000, url
        assert "cdn." not in html.text
        if page == "/docs":  # Swagger UI's validator badge would post the schema elsewhere
            assert '"validatorUrl": null' in html.text
        assert client.get("/openapi.json").status_code == 200
