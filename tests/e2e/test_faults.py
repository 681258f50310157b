"""Partial faults over HTTP (issue 17): each database fault is a 503 ``unavailable`` within the
configured timeout, never a 500 and never an allow that depended on the faulted part; ``/readyz``
names the component while the fault lasts and is ready again once it is removed.

The faults are injected into a PostgreSQL database of the test's own, as a user met them: a
renamed table, the database switched read-only (a failover onto a replica), backends killed
(``pg_terminate_backend``), a row lock held on ``audit_state``; and a Redis that accepts
connections and never answers, which costs one socket timeout and leaves rate limits enforced
by the worker's own buckets.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import httpx
import pytest
import redis
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url

from guard.api import Role
from guard.db import Base
from guard.faces import FaceEngine
from guard.faces.dlib_engine import DlibEngine
from tests.support.databases import POSTGRES_ADMIN_URL
from tests.support.live import LiveFactory, LiveService, params
from tests.support.photos import ENROLL, PORTRAIT, crop
from tests.support.registry import EVIDENCE

pytestmark = pytest.mark.postgres

LOCK_TIMEOUT_S = 1.0
# Two shared cores: what a request's own work may add to a timeout it waited out.
SLACK_S = 1.5
FAST = {
    "db_lock_timeout_s": LOCK_TIMEOUT_S,
    "db_statement_timeout_s": 2.0,
    "db_connect_timeout_s": 2.0,
    "api_rate_burst": 10_000,
    "nsfw_classifier": "none",  # not what these tests are about, and seconds per check
}
UNAVAILABLE = "https://likeness-guard.dev/problems/unavailable"
PORTRAIT_PART = {"image": ("portrait.jpg", crop("t1", PORTRAIT), "image/jpeg")}

# What both checks read: the key (auth), its flags, and the audit log every decision goes to.
EVERY_CHECK_READS = {
    "api_keys",
    "usage_flags",
    "audit_entries",
    "audit_nodes",
    "audit_checkpoints",
    "audit_state",
}
# What a check of a consented person's face reads on top: the registry.
FACE_CHECK_READS = EVERY_CHECK_READS | {"subjects", "face_templates", "consent_grants"}


@pytest.fixture(scope="module")
def face_engine() -> FaceEngine:
    """The portrait is upright: one detection pass, no rotation sweep, keeps each check fast."""
    return DlibEngine(rotation_sweep=())


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """These faults are PostgreSQL's: the live guard runs on a database of the test's own."""
    return postgres_url


@pytest.fixture
def admin() -> Iterator[Engine]:
    """The server's maintenance database, for faults that cannot be set from inside."""
    engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@dataclass
class Faulty:
    """A live guard with a consented person (Model A, granting ``acme/app`` relight) and the
    means to inject faults into its database."""

    service: LiveService
    admin: Engine

    @property
    def url(self) -> str:
        return self.service.guard.settings.database_url

    @property
    def name(self) -> str:
        database = make_url(self.url).database
        assert database is not None
        return database

    def sql(self, statement: str) -> None:
        """Run ``statement`` in the guard's own database (autocommit)."""
        engine = create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(statement))
        finally:
            engine.dispose()

    def terminate_backends(self, *, except_pid: int = 0) -> int:
        """End every session on the guard's database (as an operator or a failover would)."""
        with self.admin.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :d AND pid <> pg_backend_pid() AND pid <> :keep"
                ),
                {"d": self.name, "keep": except_pid},
            ).all()
        return len(rows)

    def ready(self) -> httpx.Response:
        return httpx.get(f"{self.service.base_url}/readyz", timeout=30)


FaultyFactory = Callable[..., Faulty]


@pytest.fixture
def faulty(live: LiveFactory, admin: Engine) -> FaultyFactory:
    def factory(**overrides: object) -> Faulty:
        service = live(**{**FAST, **overrides})
        guard = service.guard
        subject = guard.registry.create_subject("acme", display_name="Model A")
        guard.registry.enroll(subject.id, guard.faces_in(crop("t1", ENROLL)))
        guard.registry.grant(
            subject.id, grantee="acme/app", scopes=("relight",), evidence_sha256=EVIDENCE
        )
        return Faulty(service, admin)

    return factory


def _text_check(api: httpx.Client) -> httpx.Response:
    return api.post("/v1/checks", data=params(operation="generate"))


def _face_check(api: httpx.Client) -> httpx.Response:
    return api.post("/v1/checks", data=params(operation="relight"), files=PORTRAIT_PART)


def _allowed(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json()["decision"]["verdict"] in ("allow", "allow_with_conditions")


def _unavailable(response: httpx.Response, *naming: str) -> None:
    """A 503 ``unavailable`` problem (a deny, when it carries a decision) naming ``naming``."""
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["type"] == UNAVAILABLE
    assert body["code"] == "unavailable"
    if "decision" in body:
        assert body["decision"]["verdict"] == "deny"
        assert body["decision"]["reason_codes"] == ["unavailable"]
    for words in naming:
        assert words in body["detail"], body["detail"]


def _not_ready(faulty: Faulty, check: str, *naming: str) -> None:
    response = faulty.ready()
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["ready"] is False
    assert body["checks"][check].startswith("unavailable"), body["checks"]
    for words in naming:
        assert words in body["checks"][check], body["checks"][check]


def _ready_again(faulty: Faulty, api: httpx.Client) -> dict[str, float]:
    """Ready, and both checks allowed again: returns how long each took (seconds)."""
    response = faulty.ready()
    assert response.status_code == 200, response.text
    took = {}
    for check in (_text_check, _face_check):
        started = time.monotonic()
        _allowed(check(api))
        took[check.__name__] = time.monotonic() - started
    return took


@contextmanager
def _row_locked(faulty: Faulty) -> Iterator[Connection]:
    """Another session holding ``audit_state``'s row (SELECT ... FOR UPDATE) until exit."""
    engine = create_engine(faulty.url)
    try:
        with engine.connect() as holder:
            holder.execute(text("SELECT * FROM audit_state WHERE id = 1 FOR UPDATE"))
            yield holder
            holder.rollback()
    finally:
        engine.dispose()


def test_a_renamed_table_is_503_naming_it_and_not_ready_until_renamed_back(
    faulty: FaultyFactory,
) -> None:
    """Every table in turn: a request that reads it is 503 naming it (a deny when it was a
    decision), one that does not may be answered as before; ``/readyz`` names it; renaming it
    back recovers without a restart. No answer is ever a 500."""
    f = faulty()
    tables = sorted(Base.metadata.tables)
    assert set(tables) >= FACE_CHECK_READS
    with f.service.client() as api:
        _ready_again(f, api)
        for table in tables:
            f.sql(f'ALTER TABLE "{table}" RENAME TO "{table}_moved"')
            try:
                answers = [(_text_check(api), EVERY_CHECK_READS)]
                if table not in EVERY_CHECK_READS:  # the face check differs in what else it reads
                    answers.append((_face_check(api), FACE_CHECK_READS))
                for response, reads in answers:
                    if table in reads:
                        _unavailable(response, table, "a table is missing")
                    else:  # a request that does not read the table may go on; never a 500
                        assert response.status_code in (200, 503), (table, response.text)
                _not_ready(f, "database_tables", table, "a table is missing")
            finally:
                f.sql(f'ALTER TABLE "{table}_moved" RENAME TO "{table}"')
            assert f.ready().status_code == 200, table
        _ready_again(f, api)


def test_a_read_only_database_is_503_and_not_ready_until_writable(
    faulty: FaultyFactory,
) -> None:
    """A failover onto a replica: new sessions are read-only. Decisions cannot be audited, so
    none is answered (503 naming the read-only database, never an allow); reads still work;
    ``/readyz`` names the write check; writable again, it recovers without a restart."""
    f = faulty()
    with f.service.client() as api:
        _ready_again(f, api)
        with f.admin.connect() as connection:
            connection.execute(
                text(f'ALTER DATABASE "{f.name}" SET default_transaction_read_only = on')
            )
        f.terminate_backends()  # the pool's sessions reconnect, read-only now
        try:
            _unavailable(_text_check(api), "audit_state", "read-only")
            _unavailable(_face_check(api), "read-only")
            assert api.get("/v1/subjects").status_code == 200  # reading needs no writes
            _not_ready(f, "database_writable", "audit_state", "read-only")
            assert f.ready().json()["checks"]["database_tables"] == "ok"
        finally:
            with f.admin.connect() as connection:
                connection.execute(
                    text(f'ALTER DATABASE "{f.name}" RESET default_transaction_read_only')
                )
            f.terminate_backends()
        _ready_again(f, api)


def test_a_held_audit_row_lock_is_503_within_the_lock_timeout(faulty: FaultyFactory) -> None:
    """Another session holds ``audit_state``'s row: a decision waits at most the lock timeout
    (the user saw 18.7 s), then is 503 naming the table; ``/readyz`` says so too; releasing
    the lock recovers."""
    f = faulty()
    with f.service.client() as api:
        _ready_again(f, api)  # the first decision also records the policy in force
        took = _ready_again(f, api)  # what each check costs without the fault
        with _row_locked(f):
            for check in (_text_check, _face_check):
                started = time.monotonic()
                response = check(api)
                waited = time.monotonic() - started - took[check.__name__]
                _unavailable(response, "audit_state", "lock timeout")
                assert waited <= LOCK_TIMEOUT_S + SLACK_S, (waited, took)
            assert api.get("/v1/subjects").status_code == 200  # a row lock blocks no reads
            started = time.monotonic()
            _not_ready(f, "database_writable", "audit_state", "lock timeout")
            assert time.monotonic() - started <= LOCK_TIMEOUT_S + SLACK_S
        _ready_again(f, api)


def _wait_for_lock_waiter(f: Faulty, holder_pid: int) -> None:
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        with f.admin.connect() as connection:
            waiting = connection.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = :d "
                    "AND wait_event_type = 'Lock' AND pid <> :holder"
                ),
                {"d": f.name, "holder": holder_pid},
            ).all()
        if waiting:
            return
        time.sleep(0.02)
    raise AssertionError("the decision never waited on the held lock")


def test_killed_backends_are_503_in_flight_and_recover(faulty: FaultyFactory) -> None:
    """A backend killed while a decision waits on it is a 503 naming the lost connection, at
    once (not at a timeout); idle sessions killed are replaced unnoticed; a burst of kills
    under load answers only 200 (audited, with a receipt) or 503, never a 500."""
    f = faulty(db_lock_timeout_s=10.0, db_statement_timeout_s=20.0)
    with f.service.client() as api:
        _ready_again(f, api)

        # In flight: the decision waits on a held row lock; its backend is killed.
        with _row_locked(f) as holder:
            holder_pid = int(holder.execute(text("SELECT pg_backend_pid()")).scalar_one())
            answers: list[httpx.Response] = []
            started = time.monotonic()
            request = threading.Thread(target=lambda: answers.append(_text_check(api)))
            request.start()
            _wait_for_lock_waiter(f, holder_pid)
            assert f.terminate_backends(except_pid=holder_pid) >= 1
            request.join(timeout=30)
            elapsed = time.monotonic() - started
        _unavailable(answers[0], "connection")
        assert elapsed < 5, elapsed  # the kill ended it, not the 10 s lock timeout

        # Idle: the pool checks a connection before use and replaces the dead ones.
        _allowed(_text_check(api))
        assert f.terminate_backends() >= 1
        _ready_again(f, api)

        # A burst of kills under load.
        stop = threading.Event()

        def kill_repeatedly() -> None:
            while not stop.is_set():
                with suppress(Exception):
                    f.terminate_backends()
                time.sleep(0.05)

        killer = threading.Thread(target=kill_repeatedly)
        killer.start()
        statuses: list[int] = []
        try:
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline:
                response = _text_check(api)
                statuses.append(response.status_code)
                if response.status_code == 200:
                    assert response.json()["receipt"]["leaf_index"] >= 0
                else:
                    _unavailable(response)
        finally:
            stop.set()
            killer.join()
        assert statuses and set(statuses) <= {200, 503}, statuses
        _ready_again(f, api)


class StalledRedis:
    """A TCP endpoint in front of a real Redis. While stalled it accepts connections and never
    answers (nor reads): a Redis behind a dead network path. Resumed, it relays to the real one.
    ``accepted`` counts the connections the guard opened."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self.stalled = True
        self.accepted = 0
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(client)
            if not self.stalled:
                threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self._upstream)
        self._held.append(upstream)

        def pump(source: socket.socket, sink: socket.socket) -> None:
            with suppress(OSError):
                while data := source.recv(65536):
                    sink.sendall(data)
            with suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
        pump(client, upstream)

    def resume(self) -> None:
        """Relay from now on; the connections held so far are closed (the guard reconnects)."""
        self.stalled = False
        held, self._held = self._held, []
        for connection in held:
            with suppress(OSError):
                connection.close()

    def close(self) -> None:
        self.resume()
        with suppress(OSError):
            self._server.close()


def test_a_stalled_redis_costs_one_timeout_and_limits_still_hold(
    live: LiveFactory, redis_url: str
) -> None:
    """Redis accepts and never answers: the first request pays one socket timeout, the next
    ones none (the worker's own buckets serve them, and still refuse past the burst: 429);
    ``/readyz`` says rate limits are degraded within the timeout; once Redis answers again,
    limits are shared through it again without a restart."""
    real = make_url(redis_url)
    stalled = StalledRedis((real.host or "127.0.0.1", real.port or 6379))
    timeout_s = 0.3
    try:
        service = live(
            redis_url=f"redis://127.0.0.1:{stalled.port}/{real.database or 0}",
            redis_socket_timeout_ms=int(timeout_s * 1000),
            redis_connect_timeout_ms=int(timeout_s * 1000),
            redis_retry_after_s=60.0,
            api_rate_per_second=0.1,
            api_rate_burst=3,
        )
        with service.client() as api:
            timings, statuses = [], []
            for _ in range(4):
                started = time.monotonic()
                statuses.append(api.get("/v1/subjects").status_code)
                timings.append(time.monotonic() - started)
        assert statuses == [200, 200, 200, 429]  # the fallback buckets still limit
        assert timings[0] <= timeout_s + SLACK_S, timings
        assert stalled.accepted == 1  # one try in the retry interval, not one per command

        started = time.monotonic()
        ready = httpx.get(f"{service.base_url}/readyz", timeout=30)
        assert time.monotonic() - started <= timeout_s + SLACK_S
        assert ready.status_code == 200  # deciding does not depend on Redis
        assert ready.json()["checks"]["rate_limits"].startswith("degraded: Redis")

        stalled.resume()
        ready = httpx.get(f"{service.base_url}/readyz", timeout=30)
        assert ready.json()["checks"]["rate_limits"] == "ok (redis)"
        with service.client(role=Role.AUDITOR) as auditor:
            assert auditor.get("/v1/subjects").status_code == 200
        key_id = service.token("acme", Role.AUDITOR).removeprefix("lg_").split(".")[0]
        shared = redis.Redis.from_url(redis_url)
        try:
            assert shared.exists(f"guard:bucket:{key_id}")  # shared through Redis again
        finally:
            shared.close()
    finally:
        stalled.close()
