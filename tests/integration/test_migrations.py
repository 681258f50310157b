"""The schema changes only through Alembic, up and down, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re

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
    "audit_index",
    "audit_reason_index",
    "audit_ref_index",
    "console_sessions",
    "blocklist_generations",
    "edit_jobs",
}
JOB_TABLES = {"edit_jobs"}
BLOCKLIST_TABLES = {"blocklist_generations"}
CONSOLE_TABLES = {"audit_index", "audit_reason_index", "audit_ref_index", "console_sessions"}
API_TABLES = {"api_keys", "usage_flags"}
PAGE_TABLES = {"consent_requests", "management_links"}
AUDIT_TABLES = {"audit_entries", "audit_nodes", "audit_checkpoints", "audit_state"}


def test_plain_postgresql_urls_use_psycopg() -> None:
    from guard.db import normalise_url

    assert normalise_url("postgresql://u:p@h:5432/d") == "postgresql+psycopg://u:p@h:5432/d"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def _tables(url: str) -> set[str]:
    """The guard's own tables; procrastinate's (PostgreSQL only) are :func:`_queue_objects`."""
    engine = create_engine(url)
    try:
        names = set(inspect(engine).get_table_names()) - {"alembic_version"}
        return {name for name in names if not name.startswith("procrastinate_")}
    finally:
        engine.dispose()


def _queue_objects(url: str) -> tuple[int, int]:
    """How many procrastinate tables and functions the database holds (0, 0 on SQLite)."""
    if not url.startswith("postgresql"):
        return 0, 0
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            tables = connection.execute(
                text("select count(*) from pg_tables where tablename like 'procrastinate%'")
            ).scalar_one()
            functions = connection.execute(
                text("select count(*) from pg_proc where proname like 'procrastinate%'")
            ).scalar_one()
        return int(tables), int(functions)
    finally:
        engine.dispose()


@pytest.mark.storage
def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    assert current_revision(empty_database_url) is None
    upgrade_to_head(empty_database_url)
    assert current_revision(empty_database_url) == "0014"
    assert _tables(empty_database_url) == TABLES
    on_postgresql = empty_database_url.startswith("postgresql")
    tables, functions = _queue_objects(empty_database_url)
    assert (tables >= 4 and functions >= 10) if on_postgresql else (tables, functions) == (0, 0)
    engine = create_engine(empty_database_url)
    with engine.connect() as connection:
        assert (
            connection.execute(text("select version from registry_state where id = 1")).scalar()
            == 0
        )
    engine.dispose()
    upgrade_to_head(empty_database_url)  # idempotent
    downgrade_to(empty_database_url, "0013")
    assert _tables(empty_database_url) == TABLES
    downgrade_to(empty_database_url, "0012")
    assert _tables(empty_database_url) == TABLES - JOB_TABLES
    assert _queue_objects(empty_database_url) == (0, 0)  # the queue's schema goes with 0013
    downgrade_to(empty_database_url, "0011")
    assert _tables(empty_database_url) == TABLES - JOB_TABLES - BLOCKLIST_TABLES
    downgrade_to(empty_database_url, "0009")
    older = TABLES - JOB_TABLES - BLOCKLIST_TABLES - CONSOLE_TABLES
    assert _tables(empty_database_url) == older
    downgrade_to(empty_database_url, "0007")
    assert _tables(empty_database_url) == older - PAGE_TABLES
    downgrade_to(empty_database_url, "0003")
    assert _tables(empty_database_url) == older - PAGE_TABLES - API_TABLES
    downgrade_to(empty_database_url, "0002")
    assert _tables(empty_database_url) == older - PAGE_TABLES - API_TABLES - AUDIT_TABLES
    downgrade_to(empty_database_url, "0001")
    assert _tables(empty_database_url) == older - PAGE_TABLES - API_TABLES - AUDIT_TABLES - {
        "manifests"
    }
    downgrade_to(empty_database_url, "base")
    assert _tables(empty_database_url) == set()
    assert current_revision(empty_database_url) is None
    upgrade_to_head(empty_database_url)
    assert _tables(empty_database_url) == TABLES
    assert _queue_objects(empty_database_url) == (tables, functions)  # all of it back


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


@pytest.mark.storage
def test_0010_indexes_the_entries_written_before_it(empty_database_url: str) -> None:
    """The search index is built for a log that already holds entries: each decision gets its
    row, its reason codes and its keyed references, exactly as an append writes them."""
    upgrade_to_head(empty_database_url)
    downgrade_to(empty_database_url, "0009")
    decision = {
        "v": 2,
        "kind": "decision",
        "time": "2026-12-01T10:30:00+00:00",
        "tenant": "acme",
        "requester": "r" * 64,
        "operation": "relight",
        "stage": "input",
        "decision_id": "dec_old",
        "verdict": "deny",
        "reason_codes": ["no_consent", "public_figure"],
        "policy": {"id": "default", "version": "3"},
        "subject_refs": ["s" * 64],
        "grant_refs": ["g" * 64],
    }
    in_force = {"v": 2, "kind": "policy_in_force", "time": "2026-12-01T10:00:00+00:00"}
    engine = create_engine(empty_database_url)
    with engine.begin() as connection:
        for idx, entry in enumerate([in_force, decision]):
            connection.execute(
                text(
                    "insert into audit_entries (idx, leaf_hash, entry, decision_id, created_at) "
                    "values (:idx, :leaf, :entry, :decision, CURRENT_TIMESTAMP)"
                ),
                {
                    "idx": idx,
                    "leaf": "0" * 64,
                    "entry": json.dumps(entry),
                    "decision": entry.get("decision_id"),
                },
            )
    upgrade_to_head(empty_database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("select idx, tenant, kind, verdict, operation, decision_id from audit_index")
        ).all()
        codes = connection.execute(text("select code from audit_reason_index order by code"))
        refs = connection.execute(text("select tenant, ref from audit_ref_index order by ref"))
        indexed = (sorted(tuple(r) for r in rows), [c for (c,) in codes], [tuple(r) for r in refs])
    engine.dispose()
    assert indexed == (
        [
            (0, "", "policy_in_force", None, None, None),
            (1, "acme", "decision", "deny", "relight", "dec_old"),
        ],
        ["no_consent", "public_figure"],
        [("acme", "g" * 64), ("acme", "s" * 64)],
    )


@pytest.mark.storage
def test_0014_names_earlier_erasures_at_random(empty_database_url: str) -> None:
    """Certificates made before 0014 were named by the erasures table's row number, which
    counts every tenant's erasures; the upgrade gives each a random id of its own."""
    upgrade_to_head(empty_database_url)
    downgrade_to(empty_database_url, "0013")
    engine = create_engine(empty_database_url)
    with engine.begin() as connection:
        for n in range(3):
            connection.execute(
                text(
                    "insert into erasures (subject_ref, tenant, erased_at) "
                    "values (:ref, 'acme', CURRENT_TIMESTAMP)"
                ),
                {"ref": f"{n}" * 64},
            )
    upgrade_to_head(empty_database_url)
    with engine.connect() as connection:
        ids = connection.execute(text("select certificate_id from erasures")).scalars().all()
    engine.dispose()
    assert len(set(ids)) == 3
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
