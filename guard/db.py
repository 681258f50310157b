"""Database access: one engine factory, one ``Base``, one transaction helper, migrations.

SQLite is the embedded default (``<data_dir>/guard.db``); PostgreSQL is chosen by URL. The schema
changes only through Alembic (:func:`upgrade_to_head`); no code calls ``create_all``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, create_engine, event, inspect, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from guard.config import shipped_folder
from guard.errors import Unavailable

MIGRATIONS_DIR = shipped_folder("guard.migrations")


class Base(DeclarativeBase):
    """Declarative base of every table."""


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def normalise_url(url: str) -> str:
    """``postgresql://`` means the installed psycopg 3 driver (SQLAlchemy would pick psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; for SQLite the parent folder is created and foreign keys enforced."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _enable_sqlite_foreign_keys)
        return engine
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})


class Database:
    """An engine plus sessions whose connection failures become :class:`Unavailable`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_db_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session committed on success and rolled back on any error."""
        try:
            with self._sessions.begin() as session:
                yield session
        except OperationalError as exc:
            raise Unavailable(f"the database is unavailable ({self.safe_url}): {exc.orig}") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise Unavailable(f"the database connection was lost ({self.safe_url})") from exc
            raise

    @property
    def safe_url(self) -> str:
        """The URL without its password, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    def require_schema(self) -> None:
        """Raise :class:`Unavailable` unless the migrated schema is present."""
        try:
            tables = set(inspect(self.engine).get_table_names())
        except OperationalError as exc:
            raise Unavailable(f"the database is unavailable ({self.safe_url}): {exc.orig}") from exc
        if "alembic_version" not in tables:
            raise Unavailable(
                f"the database at {self.safe_url} has no schema; run `guard init` first"
            )

    def dispose(self) -> None:
        self.engine.dispose()


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_to_head(url: str) -> None:
    """Apply every migration up to the newest one (idempotent)."""
    from alembic import command

    create_db_engine(url).dispose()  # creates the SQLite folder
    command.upgrade(_alembic_config(url), "head")


def downgrade_to(url: str, revision: str) -> None:
    """Roll the schema back to ``revision`` (``base`` removes every table)."""
    from alembic import command

    command.downgrade(_alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """The schema revision the database is at, or ``None`` before ``guard init``."""
    from alembic.runtime.migration import MigrationContext

    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
