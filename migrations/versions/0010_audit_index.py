"""The audit log's search index: decisions by tenant, time, verdict, reason, operation,
requester and policy; entries by the keyed references they carry (guard/audit/index.py).

The compliance console pages 10^6 decisions with filters, and the person's page lists the
decisions that matched them; both read these tables instead of every entry's JSON. The rows of
the entries written before this revision are made here with :func:`guard.audit.index.index_rows`,
the function every append uses since, so the index has one rule for what it holds.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

from guard.audit.index import index_rows, write_index

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_BACKFILL_BATCH = 5000


def upgrade() -> None:
    op.create_table(
        "audit_index",
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hour", sa.BigInteger, nullable=False),
        sa.Column("verdict", sa.String(64), nullable=True),
        sa.Column("operation", sa.String(64), nullable=True),
        sa.Column("stage", sa.String(16), nullable=True),
        sa.Column("policy_id", sa.String(128), nullable=True),
        sa.Column("policy_version", sa.String(64), nullable=True),
        sa.Column("requester", sa.String(64), nullable=True),
        sa.Column("decision_id", sa.String(40), nullable=True),
    )
    for name, columns in {
        "ix_audit_index_kind": ["tenant", "kind", "at", "idx"],
        "ix_audit_index_all": ["kind", "at", "idx"],
        "ix_audit_index_verdict": ["tenant", "verdict", "at", "idx"],
        "ix_audit_index_operation": ["tenant", "operation", "at", "idx"],
        "ix_audit_index_requester": ["tenant", "requester", "at", "idx"],
        "ix_audit_index_policy": ["tenant", "policy_version", "at", "idx"],
        "ix_audit_index_hour": ["tenant", "kind", "hour", "verdict"],
        "ix_audit_index_decision": ["decision_id"],
        "ix_audit_index_operation_all": ["operation"],
        "ix_audit_index_hour_all": ["kind", "hour", "verdict"],
    }.items():
        op.create_index(name, "audit_index", columns)
    op.create_table(
        "audit_reason_index",
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hour", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_audit_reason_index_code", "audit_reason_index", ["tenant", "code", "at", "idx"]
    )
    op.create_index("ix_audit_reason_index_hour", "audit_reason_index", ["tenant", "hour", "code"])
    op.create_index("ix_audit_reason_index_hour_all", "audit_reason_index", ["hour", "code"])
    op.create_table(
        "audit_ref_index",
        sa.Column("tenant", sa.String(128), primary_key=True),
        sa.Column("ref", sa.String(64), primary_key=True),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    )
    _backfill()


def _backfill() -> None:
    """Index every entry already in the log, oldest first, a batch at a time."""
    session = Session(bind=op.get_bind())
    entries = sa.table("audit_entries", sa.column("idx", sa.BigInteger), sa.column("entry"))
    start = 0
    while True:
        rows = session.execute(
            sa.select(entries.c.idx, entries.c.entry)
            .where(entries.c.idx >= start)
            .order_by(entries.c.idx)
            .limit(_BACKFILL_BATCH)
        ).all()
        if not rows:
            break
        write_index(session, [(idx, index_rows(json.loads(text))) for idx, text in rows])
        start = rows[-1][0] + 1
    session.flush()


def downgrade() -> None:
    op.drop_table("audit_ref_index")
    op.drop_table("audit_reason_index")
    op.drop_table("audit_index")
