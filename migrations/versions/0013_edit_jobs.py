"""Edit jobs (guard/jobs): ``edit_jobs`` holds each job's state, its encrypted input until it
has run and its encrypted result until it expires; on PostgreSQL, procrastinate's own schema
(its queue tables and functions) is applied here too, so the queue is migrated with everything
else and only through Alembic. The schema is procrastinate 3.10.0's ``schema.sql``, copied into
``migrations/sql/`` so that this revision creates the same objects whatever procrastinate is
installed: a later procrastinate release comes with a new revision applying its migration
scripts. SQLite has no queue: jobs need PostgreSQL (``POST /v1/jobs`` answers 503 there).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

PROCRASTINATE_SCHEMA = Path(__file__).resolve().parent.parent / "sql" / "procrastinate-3.10.0.sql"
# procrastinate ships no "unapply": every object its schema creates is named procrastinate_*.
_DROP_PROCRASTINATE = r"""
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT tablename FROM pg_tables
           WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate\_%' LOOP
    EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', r.tablename);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\_%' LOOP
    EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.signature);
  END LOOP;
  FOR r IN SELECT t.typname FROM pg_type t
           JOIN pg_namespace n ON n.oid = t.typnamespace
           WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\_%'
             AND t.typtype IN ('c', 'e') LOOP
    EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', r.typname);
  END LOOP;
END $$;
"""


def _run_script(script: str) -> None:
    """A multi-statement SQL script, on the migration's own connection and transaction. Sent
    to psycopg without parameters: its '%' characters are SQL, not placeholders."""
    driver = op.get_bind().connection.driver_connection
    assert driver is not None  # an open connection, inside the migration's transaction
    driver.execute(script)


def upgrade() -> None:
    op.create_table(
        "edit_jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("requester", sa.String(200), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(16), nullable=True),
        sa.Column("progress_done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("progress_total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("request_json", sa.Text, nullable=False),
        sa.Column("input_blob", sa.LargeBinary, nullable=True),
        sa.Column("input_sha256", sa.String(64), nullable=False),
        sa.Column("admission_decision_id", sa.String(64), nullable=False),
        sa.Column("admission_leaf", sa.Integer, nullable=False),
        sa.Column("outcome_json", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("result_blob", sa.LargeBinary, nullable=True),
        sa.Column("result_media_type", sa.String(32), nullable=True),
        sa.Column("result_sha256", sa.String(64), nullable=True),
        sa.Column("webhook_url", sa.Text, nullable=True),
        sa.Column("webhook_state", sa.String(16), nullable=True),
        sa.Column("webhook_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("request_sha256", sa.String(64), nullable=False),
    )
    # One job per (tenant, Idempotency-Key): a submission retried after a lost answer finds
    # its job instead of making a second (NULLs, submissions without a key, never collide).
    op.create_index(
        "ix_edit_jobs_idempotency", "edit_jobs", ["tenant", "idempotency_key"], unique=True
    )
    op.create_index("ix_edit_jobs_tenant_created", "edit_jobs", ["tenant", "created_at"])
    op.create_index("ix_edit_jobs_expires", "edit_jobs", ["expires_at"])
    # The jobs not yet finished, found per tenant (its limit) and by the keeper, without
    # reading every job ever made.
    active = sa.text("state IN ('queued', 'running')")
    op.create_index(
        "ix_edit_jobs_active",
        "edit_jobs",
        ["tenant", "state"],
        postgresql_where=active,
        sqlite_where=active,
    )
    if op.get_bind().dialect.name == "postgresql":
        _run_script(PROCRASTINATE_SCHEMA.read_text(encoding="utf-8"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _run_script(_DROP_PROCRASTINATE)
    op.drop_index("ix_edit_jobs_idempotency", table_name="edit_jobs")
    op.drop_index("ix_edit_jobs_active", table_name="edit_jobs")
    op.drop_index("ix_edit_jobs_expires", table_name="edit_jobs")
    op.drop_index("ix_edit_jobs_tenant_created", table_name="edit_jobs")
    op.drop_table("edit_jobs")
