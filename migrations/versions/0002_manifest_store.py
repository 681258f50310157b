"""Manifest store: every signed manifest, by watermark record id and perceptual fingerprint.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "manifests",
        sa.Column("record_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("manifest_label", sa.String(120), nullable=False),
        sa.Column("decision_id", sa.String(40), nullable=False),
        sa.Column("output_sha256", sa.String(64), nullable=False),
        sa.Column("mime_type", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(16), nullable=False),
        sa.Column("store_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_manifests_decision_id", "manifests", ["decision_id"])
    op.create_index("ix_manifests_output_sha256", "manifests", ["output_sha256"])


def downgrade() -> None:
    op.drop_index("ix_manifests_output_sha256", table_name="manifests")
    op.drop_index("ix_manifests_decision_id", table_name="manifests")
    op.drop_table("manifests")
