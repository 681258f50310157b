"""Shared fixtures: the real dlib engine and databases on SQLite and PostgreSQL.

``database_url`` is a migrated database of the test's own, on SQLite. A test whose subject is
how the database behaves (transactions, concurrency, constraints, types, losing the server) is
marked ``storage`` (on the test, or ``pytestmark`` for a module) and runs on SQLite and on
PostgreSQL. ``empty_database_url`` is the same without the schema, for the migration tests.

When the PostgreSQL server is absent its tests skip loudly, except under CI (CI=true), where an
absent server is a failure: CI must show they ran.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard import Guard
from guard.bootstrap import initialise
from guard.config import Settings
from guard.db import upgrade_to_head
from guard.faces import FaceEngine
from guard.faces.dlib_engine import DlibEngine
from tests.support.databases import (
    POSTGRES_ADMIN_URL,
    migrated_postgres_template,
    postgres_database,
    postgres_problem,
)
from tests.support.guards import GuardFactory

# No test may reach a model hub: the diffusers editor's tests load tiny pipelines from disk.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
DATABASE_FIXTURES = ("database_url", "empty_database_url")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``storage`` tests get their database on each backend; the others only on SQLite."""
    if metafunc.definition.get_closest_marker("storage") is None:
        return
    for fixture in DATABASE_FIXTURES:
        if fixture in metafunc.fixturenames:
            metafunc.parametrize(fixture, BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def face_engine() -> FaceEngine:
    return DlibEngine()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    problem = postgres_problem(POSTGRES_ADMIN_URL)
    if problem is not None:
        message = f"PostgreSQL at {POSTGRES_ADMIN_URL} is not reachable ({problem})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the PostgreSQL tests")
        pytest.skip(f"!!! SKIPPED: {message}")
    return POSTGRES_ADMIN_URL


@pytest.fixture(scope="session")
def postgres_template(postgres_server: str) -> Iterator[str]:
    with migrated_postgres_template(postgres_server) as name:
        yield name


@pytest.fixture
def postgres_url(postgres_server: str, postgres_template: str) -> Iterator[str]:
    """A migrated PostgreSQL database of this test's own."""
    with postgres_database(postgres_server, template=postgres_template) as url:
        yield url


@pytest.fixture
def empty_postgres_url(postgres_server: str) -> Iterator[str]:
    with postgres_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "guard.db"
    upgrade_to_head(f"sqlite:///{path}")
    return path


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database of this test's own (PostgreSQL only where ``storage`` asks for it)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        path = tmp_path / "guard.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database without any schema, for the migration tests."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return f"sqlite:///{tmp_path / 'guard.db'}"
    return str(request.getfixturevalue("empty_postgres_url"))


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
