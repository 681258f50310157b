"""The schema changes only through Alembic, up and down, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from guard.db import current_revision, downgrade_to, upgrade_to_head

TABLES = {
    "subjects",
    "face_templates",
    "consent_grants",
    "registry_state",
    "erasures",
    "manifests",
    "audit_entries",
    "audit_nodes",
    "audit_checkpoints",
    "audit_state",
    "api_keys",
    "usage_flags",
    "consent_requests",
    "management_links",
}
API_TABLES = {"api_keys", "usage_flags"}
PAGE_TABLES = {"consent_requests", "management_links"}
AUDIT_TABLES = {"audit_entries", "audit_nodes", "audit_checkpoints", "audit_state"}


def test_plain_postgresql_urls_use_psycopg() -> None:
    from guard.db import normalise_url

    assert normalise_url("postgresql://u:p@h:5432/d") == "postgresql+psycopg://u:p@h:5432/d"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


@pytest.mark.storage
def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    assert current_revision(empty_database_url) is None
    upgrade_to_head(empty_database_url)
    assert current_revision(empty_database_url) == "0009"
    assert _tables(empty_database_url) == TABLES
    engine = create_engine(empty_database_url)
    with engine.connect() as connection:
        assert (
            connection.execute(text("select version from registry_state where id = 1")).scalar()
            == 0
        )
    engine.dispose()
    upgrade_to_head(empty_database_url)  # idempotent
    downgrade_to(empty_database_url, "0007")
    assert _tables(empty_database_url) == TABLES - PAGE_TABLES
    downgrade_to(empty_database_url, "0003")
    assert _tables(empty_database_url) == TABLES - PAGE_TABLES - API_TABLES
    downgrade_to(empty_database_url, "0002")
    assert _tables(empty_database_url) == TABLES - PAGE_TABLES - API_TABLES - AUDIT_TABLES
    downgrade_to(empty_database_url, "0001")
    assert _tables(empty_database_url) == TABLES - PAGE_TABLES - API_TABLES - AUDIT_TABLES - {
        "manifests"
    }
    downgrade_to(empty_database_url, "base")
    assert _tables(empty_database_url) == set()
    assert current_revision(empty_database_url) is None
    upgrade_to_head(empty_database_url)
    assert _tables(empty_database_url) == TABLES


@pytest.mark.storage
def test_links_made_before_0005_were_unverified_and_are_cleared(empty_database_url: str) -> None:
    """Before 0005 any tenant could link its own subject to a public figure (issue 15); the
    upgrade keeps none of those links, so the figure's face is blocked until an operator links
    it with evidence."""
    upgrade_to_head(empty_database_url)
    downgrade_to(empty_database_url, "0004")
    engine = create_engine(empty_database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "insert into subjects (id, tenant, public_figure_id, created_at) "
                "values ('sub_self_linked', 'acme', 'tom-hanks', CURRENT_TIMESTAMP)"
            )
        )
    upgrade_to_head(empty_database_url)
    with engine.connect() as connection:
        row = connection.execute(
            text(
                "select public_figure_id, public_figure_linked_by from subjects "
                "where id = 'sub_self_linked'"
            )
        ).one()
    engine.dispose()
    assert tuple(row) == (None, None)
