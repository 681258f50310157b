"""Shared fixtures: the real dlib engine, the real photos, and databases on SQLite and PostgreSQL.

PostgreSQL tests use a fresh database per test (created on the server named by
GUARD_TEST_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/postgres) and drop it
afterwards, so parallel runs never collide. When the server is absent the tests skip loudly,
except under CI (CI=true), where an absent server is a failure: CI must show they ran.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from guard import Guard
from guard.bootstrap import initialise
from guard.config import Settings
from guard.db import normalise_url
from guard.faces import FaceEngine
from guard.faces.dlib_engine import DlibEngine

# No test may reach a model hub: the diffusers editor's tests load tiny pipelines from disk.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

POSTGRES_ADMIN_URL = normalise_url(
    os.environ.get("GUARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
)


@pytest.fixture(scope="session")
def face_engine() -> FaceEngine:
    return DlibEngine()


def _postgres_available() -> str | None:
    try:
        engine = create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means "absent" here
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    problem = _postgres_available()
    if problem is not None:
        message = f"PostgreSQL at {POSTGRES_ADMIN_URL} is not reachable ({problem})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the PostgreSQL tests")
        pytest.skip(f"!!! SKIPPED: {message}")
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    name = f"guard_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'guard.db'}"
    return str(request.getfixturevalue("postgres_url"))


GuardFactory = Callable[..., Guard]


@pytest.fixture
def make_guard(
    tmp_path: Path, database_url: str, face_engine: FaceEngine
) -> Iterator[GuardFactory]:
    """Build initialised guards on this test's database (extra kwargs go to Settings)."""
    guards: list[Guard] = []

    def factory(**overrides: object) -> Guard:
        values: dict[str, object] = {"data_dir": tmp_path / "var", "database_url": database_url}
        values.update(overrides)
        settings = Settings(**values)  # type: ignore[arg-type]
        initialise(settings, face_engine)
        guard = Guard(settings, face_engine=face_engine)
        guards.append(guard)
        return guard

    yield factory
    for guard in guards:
        guard.close()
