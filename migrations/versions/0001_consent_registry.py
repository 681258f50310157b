"""Consent registry: subjects, encrypted face templates, grants, erasures, registry version.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_when = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subjects",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=True),
        sa.Column("public_figure_id", sa.String(128), nullable=True),
        sa.Column("created_at", _when, nullable=False),
    )
    op.create_index("ix_subjects_tenant", "subjects", ["tenant"])
    op.create_table(
        "face_templates",
        sa.Column("id", _id64, primary_key=True, autoincrement=True),
        sa.Column(
            "subject_id",
            sa.String(40),
            sa.ForeignKey("subjects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("engine", sa.String(32), nullable=False),
        sa.Column("dimension", sa.Integer, nullable=False),
        sa.Column("embedding_ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("created_at", _when, nullable=False),
    )
    op.create_index("ix_face_templates_subject_id", "face_templates", ["subject_id"])
    op.create_table(
        "consent_grants",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "subject_id",
            sa.String(40),
            sa.ForeignKey("subjects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("grantee", sa.String(200), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("not_before", _when, nullable=False),
        sa.Column("expires_at", _when, nullable=True),
        sa.Column("revoked_at", _when, nullable=True),
        sa.Column("evidence_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", _when, nullable=False),
    )
    op.create_index("ix_consent_grants_subject_id", "consent_grants", ["subject_id"])
    op.create_index("ix_consent_grants_grantee", "consent_grants", ["grantee"])
    registry_state = op.create_table(
        "registry_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(registry_state, [{"id": 1, "version": 0}])
    op.create_table(
        "erasures",
        sa.Column("id", _id64, primary_key=True, autoincrement=True),
        sa.Column("subject_ref", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("erased_at", _when, nullable=False),
    )
    op.create_index("ix_erasures_subject_ref", "erasures", ["subject_ref"])


def downgrade() -> None:
    op.drop_table("erasures")
    op.drop_table("registry_state")
    op.drop_table("consent_grants")
    op.drop_table("face_templates")
    op.drop_table("subjects")
