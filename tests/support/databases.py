"""Test databases on SQLite and PostgreSQL, each test with its own.

A migrated database is a copy of a template migrated once per session (a file copy on SQLite,
``CREATE DATABASE ... TEMPLATE`` on PostgreSQL), not a fresh run of every Alembic revision.
PostgreSQL databases live on the server named by GUARD_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/postgres) under unique names and are dropped afterwards,
so parallel runs never collide.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from guard.db import normalise_url, upgrade_to_head

POSTGRES_ADMIN_URL = normalise_url(
    os.environ.get("GUARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
)


def postgres_problem(admin_url: str) -> str | None:
    """Why the server at ``admin_url`` cannot be used, or ``None`` when it answers."""
    try:
        engine = create_engine(admin_url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means "absent" here
        return f"{type(exc).__name__}: {exc}"


def _administer(admin_url: str, statement: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(statement))
    finally:
        admin.dispose()


def _url_of(admin_url: str, database: str) -> str:
    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


@contextmanager
def postgres_database(admin_url: str, *, template: str | None = None) -> Iterator[str]:
    """A new database (empty, or a copy of ``template``), dropped on exit: yields its URL."""
    name = f"guard_test_{uuid.uuid4().hex[:12]}"
    copy_of = f' TEMPLATE "{template}"' if template else ""
    _administer(admin_url, f'CREATE DATABASE "{name}"{copy_of}')
    try:
        yield _url_of(admin_url, name)
    finally:
        _administer(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def migrated_postgres_template(admin_url: str) -> Iterator[str]:
    """A database migrated to head for :func:`postgres_database` to copy: yields its name.

    Nothing may stay connected to it (PostgreSQL copies only an idle template), which holds:
    ``upgrade_to_head`` disposes of its connections.
    """
    name = f"guard_tpl_{os.getpid()}"
    _administer(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # a crashed run's
    _administer(admin_url, f'CREATE DATABASE "{name}"')
    try:
        upgrade_to_head(_url_of(admin_url, name))
        yield name
    finally:
        _administer(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
