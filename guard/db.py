"""Database access: one engine factory, one ``Base``, one transaction helper, migrations.

SQLite is the embedded default (``<data_dir>/guard.db``); PostgreSQL is chosen by URL. The schema
changes only through Alembic (:func:`upgrade_to_head`); no code calls ``create_all``.

Every fault of the database a request meets (unreachable, a killed connection, a missing table,
a read-only server, a lock or statement timeout) leaves :meth:`Database.transaction` as
:class:`~guard.errors.Unavailable` naming the tables involved, so the caller fails closed (503,
reason ``unavailable``) instead of crashing (500). Every session waits at most the timeouts of
:class:`DbTimeouts` (``GUARD_DB_*_TIMEOUT_S``). The readiness probes (``/readyz``) are here too:
:meth:`Database.check_schema`, :meth:`Database.check_tables`, :meth:`Database.check_writable`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, Engine, create_engine, event, inspect, make_url, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from guard.config import shipped_folder
from guard.errors import Unavailable

if TYPE_CHECKING:
    from guard.config import Settings

MIGRATIONS_DIR = shipped_folder("guard.migrations")

log = logging.getLogger("guard.db")


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


@dataclass(frozen=True)
class DbTimeouts:
    """How long a session waits on the database (seconds). PostgreSQL applies all three (the
    server cancels the statement); SQLite has no statement timeout, and waits for a locked file
    at most ``lock_s`` (its busy timeout)."""

    statement_s: float = 15.0
    lock_s: float = 5.0
    connect_s: float = 5.0

    @classmethod
    def of(cls, settings: Settings) -> DbTimeouts:
        return cls(
            statement_s=settings.db_statement_timeout_s,
            lock_s=settings.db_lock_timeout_s,
            connect_s=settings.db_connect_timeout_s,
        )


def _milliseconds(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    return on_connect


def normalise_url(url: str) -> str:
    """``postgresql://`` means the installed psycopg 3 driver (SQLAlchemy would pick psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_db_engine(url: str, timeouts: DbTimeouts | None = None) -> Engine:
    """An engine for ``url``; for SQLite the parent folder is created and foreign keys enforced.

    Without ``timeouts`` (migrations, administration) statements may run as long as they need;
    sessions that serve requests pass theirs (:class:`Database`)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        busy_ms = _milliseconds(timeouts.lock_s) if timeouts else 10_000
        event.listen(engine, "connect", _sqlite_pragmas(busy_ms))
        return engine
    if timeouts is None:
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})
    # The server enforces these per statement, so a held row lock or a runaway query costs a
    # request at most the timeout (then 503), not as long as the other side cares to hold it.
    options = (
        f"-c statement_timeout={_milliseconds(timeouts.statement_s)} "
        f"-c lock_timeout={_milliseconds(timeouts.lock_s)}"
    )
    named = make_url(url).query.get("options")
    if named:  # options given in the URL stay; ours are appended
        options = f"{named if isinstance(named, str) else ' '.join(named)} {options}"
    return create_engine(
        url,
        pool_pre_ping=True,
        # A request that waited a whole statement's time for a pooled connection is answered
        # 503 rather than queued behind a stuck pool.
        pool_timeout=timeouts.statement_s,
        connect_args={
            # libpq counts whole seconds (and treats 1 as 2).
            "connect_timeout": max(2, math.ceil(timeouts.connect_s)),
            "options": options,
        },
    )


# What a fault means, by SQLSTATE (PostgreSQL) and by message (SQLite, whose errors carry none).
_SQLSTATES = {
    "42P01": "a table is missing (renamed or dropped)",
    "42703": "a column is missing (the schema is not the one this guard expects)",
    "42501": "permission denied",
    "25006": "the database is read-only",
    "55P03": "a lock was held past the lock timeout (GUARD_DB_LOCK_TIMEOUT_S)",
    "57014": "a statement ran past the statement timeout (GUARD_DB_STATEMENT_TIMEOUT_S)",
}
_SQLSTATE_CLASSES = {
    "08": "the connection failed or was lost",
    "57": "the connection was lost (the server shut down or ended this session)",
    "53": "the server is out of resources",
}
_SQLITE_MESSAGES = {
    "no such table": "a table is missing (renamed or dropped)",
    "no such column": "a column is missing (the schema is not the one this guard expects)",
    "readonly database": "the database is read-only",
    "database is locked": "a lock was held past the lock timeout (GUARD_DB_LOCK_TIMEOUT_S)",
}
# Faults of one table, not of the whole database: readiness goes on to check the other tables.
_TABLE_FAULTS = frozenset({_SQLSTATES["42P01"], _SQLSTATES["42703"], _SQLSTATES["42501"]})


@dataclass(frozen=True)
class DatabaseFault:
    """What went wrong, which tables the failing statement named, and the driver's words."""

    what: str
    tables: tuple[str, ...]
    detail: str

    @property
    def of_one_table(self) -> bool:
        return self.what in _TABLE_FAULTS

    @classmethod
    def of(cls, exc: Exception) -> DatabaseFault:
        if isinstance(exc, PoolTimeoutError):
            return cls("every pooled connection stayed busy past the timeout", (), str(exc))
        assert isinstance(exc, DBAPIError)
        original = exc.orig if exc.orig is not None else exc
        detail = (str(original).strip().splitlines() or [type(original).__name__])[0]
        return cls(_what(exc, original, detail), _tables_named(exc.statement), detail)


def _what(exc: DBAPIError, original: BaseException, detail: str) -> str:
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate in _SQLSTATES:
            return _SQLSTATES[sqlstate]
        if sqlstate[:2] in _SQLSTATE_CLASSES:
            return _SQLSTATE_CLASSES[sqlstate[:2]]
    lowered = detail.lower()
    for words, what in _SQLITE_MESSAGES.items():
        if words in lowered:
            return what
    if exc.connection_invalidated:
        return _SQLSTATE_CLASSES["08"]
    return f"database error ({type(original).__name__})"


def _tables_named(statement: str | None) -> tuple[str, ...]:
    """The guard's tables a statement names, in the order it names them."""
    if not statement:
        return ()
    known = Base.metadata.tables
    named: dict[str, None] = {}
    for word in re.findall(r"[a-z_][a-z0-9_]*", statement.lower()):
        if word in known:
            named[word] = None
    return tuple(named)


class Database:
    """An engine plus sessions whose every database fault becomes :class:`Unavailable`."""

    def __init__(self, url: str, timeouts: DbTimeouts | None = None) -> None:
        self.url = url
        self.timeouts = timeouts or DbTimeouts()
        self.engine = create_db_engine(url, self.timeouts)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """The database of ``settings`` with its timeouts (``GUARD_DB_*_TIMEOUT_S``)."""
        return cls(settings.database_url, DbTimeouts.of(settings))

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session committed on success and rolled back on any error; a database fault
        raises :class:`Unavailable`, a constraint violation stays ``IntegrityError`` (callers
        answer duplicates as conflicts)."""
        with self.faults_unavailable(), self._sessions.begin() as session:
            yield session

    @contextmanager
    def faults_unavailable(self, action: str | None = None) -> Iterator[None]:
        """The one place a database fault becomes :class:`Unavailable` (503 ``unavailable``):
        every error the driver raises except a constraint violation, which is the caller's
        answer to a duplicate, not a fault."""
        try:
            yield
        except IntegrityError:
            raise
        except (DBAPIError, PoolTimeoutError) as exc:
            raise self.unavailable(DatabaseFault.of(exc), action) from exc

    def unavailable(self, fault: DatabaseFault, action: str | None = None) -> Unavailable:
        where = action or (f"table {', '.join(fault.tables)}" if fault.tables else None)
        message = (
            f"the database is unavailable{f' ({where})' if where else ''}: {fault.what}: "
            f"{fault.detail} [{self.safe_url}]"
        )
        log.warning("%s", message)
        return Unavailable(message)

    @property
    def safe_url(self) -> str:
        """The URL without its password, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    def require_schema(self) -> None:
        """Raise :class:`Unavailable` unless the migrated schema is present."""
        with self.faults_unavailable("reading the schema"):
            tables = set(inspect(self.engine).get_table_names())
        if "alembic_version" not in tables:
            raise Unavailable(
                f"the database at {self.safe_url} has no schema; run `guard init` first"
            )

    # readiness (/readyz) ---------------------------------------------------------------------

    def check_schema(self) -> None:
        """Readiness: the database answers and its schema is at the newest Alembic revision
        this guard ships (an older one lacks what the code reads; a newer one is unknown)."""
        from alembic.runtime.migration import MigrationContext

        reading = self.faults_unavailable("reading the schema revision")
        with reading, self.engine.connect() as connection:
            current = frozenset(MigrationContext.configure(connection).get_current_heads())
        heads = migration_heads()
        if not current:
            raise Unavailable(
                f"the database at {self.safe_url} has no schema; run `guard init` first"
            )
        if current != heads:
            raise Unavailable(
                f"the schema at {self.safe_url} is at revision {', '.join(sorted(current))}, "
                f"not {', '.join(sorted(heads))} (this guard's newest): run `guard init`, "
                "which upgrades it, or run the guard version that matches it"
            )

    def check_tables(self) -> None:
        """Readiness: every table of the guard reads, every column as the code names it (one
        row at most each). A fault of the whole database stops at the first table; a missing
        or unreadable table is named with the others."""
        problems: dict[str, str] = {}
        for table in Base.metadata.sorted_tables:
            try:
                with self.engine.connect() as connection:
                    connection.execute(select(table).limit(1)).all()
            except (DBAPIError, PoolTimeoutError) as exc:
                fault = DatabaseFault.of(exc)
                if not fault.of_one_table:
                    raise self.unavailable(fault, f"reading {table.name}") from exc
                problems[table.name] = f"{fault.what}: {fault.detail}"
        if problems:
            raise Unavailable(
                f"table {', '.join(problems)} cannot be read: "
                + "; ".join(f"{name}: {problem}" for name, problem in problems.items())
                + f" [{self.safe_url}]"
            )

    def check_writable(self, table_name: str) -> None:
        """Readiness: ``table_name`` (a small table every decision writes) takes a write, in a
        transaction that is rolled back: a read-only server, or a row lock held past the lock
        timeout, is a decision that would fail."""
        table = Base.metadata.tables[table_name]
        plain = [column for column in table.columns if not column.primary_key]
        column = (plain or list(table.primary_key.columns))[0]
        writing = self.faults_unavailable(f"writing {table_name}")
        with writing, self.engine.connect() as connection:
            connection.execute(update(table).values({column.name: column}))
            connection.rollback()

    def dispose(self) -> None:
        self.engine.dispose()


@cache
def migration_heads() -> frozenset[str]:
    """The newest revision(s) of the migrations this guard ships."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(_alembic_config("sqlite://")).get_heads())


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
