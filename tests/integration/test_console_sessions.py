"""Console sessions: a key exchanged for a short-lived session that ends when it expires, when
it is signed out, or when its key is revoked; only console roles may open one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from guard.api.keys import ApiKeyStore, Role
from guard.db import Database, upgrade_to_head
from guard.errors import Forbidden, Unauthenticated
from guard.web.console.sessions import ConsoleSessionRow, ConsoleSessions, SignInNeeded

pytestmark = pytest.mark.storage


@pytest.fixture
def store(database_url: str) -> tuple[ConsoleSessions, ApiKeyStore, Database]:
    upgrade_to_head(database_url)
    db = Database(database_url)
    keys = ApiKeyStore(db)
    return ConsoleSessions(db, keys, minutes=30), keys, db


def test_an_auditor_signs_in_and_out(store: tuple[ConsoleSessions, ApiKeyStore, Database]) -> None:
    sessions, keys, db = store
    issued = keys.create(tenant="acme", role=Role.AUDITOR)
    secret, viewer = sessions.sign_in(issued.token)
    assert viewer.tenant == "acme" and sessions.viewer(secret).key.id == issued.key.id
    with db.transaction() as session:
        stored = session.scalars(select(ConsoleSessionRow.secret_sha256)).all()
    assert secret not in stored  # only its hash is kept
    sessions.sign_out(secret)
    with pytest.raises(SignInNeeded):
        sessions.viewer(secret)


@pytest.mark.parametrize("role", [Role.INTEGRATOR])
def test_only_console_roles_open_a_session(
    store: tuple[ConsoleSessions, ApiKeyStore, Database], role: Role
) -> None:
    sessions, keys, _ = store
    with pytest.raises(Forbidden):
        sessions.sign_in(keys.create(tenant="acme", role=role).token)
    with pytest.raises(Unauthenticated):
        sessions.sign_in("lg_0123456789abcdef." + "A" * 43)


def test_the_operator_sees_every_tenant_but_no_tenants_people(
    store: tuple[ConsoleSessions, ApiKeyStore, Database],
) -> None:
    sessions, keys, _ = store
    _, viewer = sessions.sign_in(keys.create(tenant=None, role=Role.OPERATOR).token)
    assert viewer.operator and viewer.tenant is None
    with pytest.raises(Forbidden):
        viewer.require_tenant()


def test_a_revoked_key_ends_its_sessions(
    store: tuple[ConsoleSessions, ApiKeyStore, Database],
) -> None:
    sessions, keys, _ = store
    issued = keys.create(tenant="acme", role=Role.ADMIN)
    secret, _ = sessions.sign_in(issued.token)
    keys.revoke(issued.key.id)
    with pytest.raises(SignInNeeded):
        sessions.viewer(secret)


def test_an_expired_session_opens_nothing(
    store: tuple[ConsoleSessions, ApiKeyStore, Database],
) -> None:
    sessions, keys, db = store
    secret, _ = sessions.sign_in(keys.create(tenant="acme", role=Role.AUDITOR).token)
    with db.transaction() as session:
        session.execute(
            update(ConsoleSessionRow).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    for presented in (secret, "", None, "x" * 500, secret + "x"):
        with pytest.raises(SignInNeeded):
            sessions.viewer(presented)
