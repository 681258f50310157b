"""Fail closed over HTTP: when the database goes away or the blocklist is corrupted, answers
are 503 with reason ``unavailable`` (never an allow) and ``/readyz`` says not ready."""

from __future__ import annotations

import os

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from guard.api import Role
from tests.support.blocklists import flip_index_byte
from tests.support.databases import POSTGRES_ADMIN_URL
from tests.support.live import LiveFactory, LiveService, image_part, params

pytestmark = pytest.mark.storage


def _ready(service: LiveService) -> httpx.Response:
    return httpx.get(f"{service.base_url}/readyz")


def _take_database_away(service: LiveService) -> None:
    url = make_url(service.guard.settings.database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        os.rename(url.database, url.database + ".gone")
    else:
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS false'))
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                {"d": url.database},
            )
        admin.dispose()
    service.guard.db.dispose()  # pooled connections would outlive the outage


def test_database_unreachable_is_503_and_not_ready(live: LiveFactory) -> None:
    service = live()
    with service.client() as api:
        assert api.post("/v1/checks", data=params(operation="generate")).status_code == 200
        assert _ready(service).status_code == 200
        _take_database_away(service)
        for response in (
            api.post("/v1/checks", data=params(operation="generate")),
            api.post("/v1/edits", data=params(operation="relight"), files=image_part()),
            api.get("/v1/subjects"),
        ):
            assert response.status_code == 503, response.text
            assert response.json()["type"] == "https://likeness-guard.dev/problems/unavailable"
    ready = _ready(service)
    assert ready.status_code == 503
    assert ready.json()["ready"] is False
    assert ready.json()["checks"]["database"].startswith("unavailable")


def test_corrupt_blocklist_is_503_unavailable_and_not_ready(live: LiveFactory) -> None:
    service = live()
    flip_index_byte(service.guard.db)  # before this guard has loaded it
    with service.client() as api:
        response = api.post("/v1/checks", data=params(operation="relight"), files=image_part())
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "unavailable"
    assert body["decision"]["verdict"] == "deny"
    assert body["decision"]["reason_codes"] == ["unavailable"]
    # The denial itself was audited, with a receipt.
    assert body["receipt"]["leaf_index"] >= 0
    ready = _ready(service)
    assert ready.status_code == 503
    assert ready.json()["checks"]["blocklist"].startswith("unavailable")
    assert ready.json()["checks"]["database"] == "ok"


def test_missing_signing_key_withholds_output_and_is_not_ready(live: LiveFactory) -> None:
    service = live()
    (service.guard.settings.c2pa_keys_dir / "signing-key.pem").unlink()
    ready = _ready(service)
    assert ready.status_code == 503
    assert ready.json()["checks"]["signing_key"].startswith("unavailable")
    with service.client("acme", Role.INTEGRATOR) as api:
        text_only = api.post("/v1/checks", data=params(operation="generate"))
    assert text_only.status_code == 200  # deciding needs no signing key; releasing does
