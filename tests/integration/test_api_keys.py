"""API keys and usage flags in the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from guard.api import ApiKeyStore, Role
from guard.api.flags import FlagStore
from guard.db import Database
from guard.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from guard.safety import UsageAlert

pytestmark = pytest.mark.storage


@pytest.fixture
def database(database_url: str) -> Database:
    return Database(database_url)


def test_key_is_shown_once_stored_hashed_and_revocable(database: Database) -> None:
    store = ApiKeyStore(database)
    issued = store.create(tenant="acme", role="auditor", label="compliance")
    assert issued.token.startswith("lg_") and issued.key.requester == "acme"
    key = store.authenticate(issued.token)
    assert (key.tenant, key.role, key.label) == ("acme", Role.AUDITOR, "compliance")
    with database.transaction() as session:
        from guard.api.keys import ApiKeyRow

        row = session.get(ApiKeyRow, key.id)
        assert row is not None
        assert issued.token.split(".")[1] not in row.secret_sha256
    store.revoke(key.id)
    with pytest.raises(Unauthenticated):
        store.authenticate(issued.token)
    with pytest.raises(Conflict):
        store.revoke(key.id)
    with pytest.raises(NotFound):
        store.revoke("0000000000000000")


def test_wrong_secret_malformed_and_unknown_tokens_are_refused_alike(database: Database) -> None:
    store = ApiKeyStore(database)
    token = store.create(tenant="acme", role=Role.ADMIN).token
    key_id, secret = token.removeprefix("lg_").split(".")
    forged = f"lg_{key_id}.{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"
    messages = set()
    for bad in (forged, "lg_nothex.x", "", "lg_" + "0" * 16 + "." + "a" * 43):
        with pytest.raises(Unauthenticated) as caught:
            store.authenticate(bad)
        messages.add(caught.value.message)
    assert len(messages) == 1


@pytest.mark.parametrize(
    ("tenant", "role", "requester"),
    [
        ("Acme", "admin", None),
        ("acme/app", "admin", None),
        ("acme", "root", None),
        ("acme", "admin", "globex/app"),
    ],
)
def test_bad_key_parameters_are_invalid_input(
    database: Database, tenant: str, role: str, requester: str | None
) -> None:
    with pytest.raises(InvalidInput):
        ApiKeyStore(database).create(tenant=tenant, role=role, requester=requester)
    assert ApiKeyStore(database).list_keys() == []


def test_one_flag_per_key_rule_and_window(database: Database) -> None:
    key = ApiKeyStore(database).create(tenant="acme", role=Role.INTEGRATOR).key
    flags = FlagStore(database)
    alert = UsageAlert("denials", "51 denied decisions", 3600)
    first = flags.raise_flag(key, alert)
    assert first is not None
    assert flags.raise_flag(key, alert) is None  # another worker saw the same crossing
    assert flags.raise_flag(key, UsageAlert("denials", "again", 7200)) is not None
    assert flags.is_flagged(key.id)
    assert len(flags.list_flags("acme")) == 2 and flags.list_flags("globex") == []
    with pytest.raises(NotFound):
        flags.clear(first.id, "globex")
    for flag in flags.list_flags("acme"):
        flags.clear(flag.id, "acme")
    assert not flags.is_flagged(key.id)
