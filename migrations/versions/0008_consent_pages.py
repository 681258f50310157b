"""The person's consent pages (issue 19): consent requests and management links.

``consent_requests``: what an integrator asked a person to agree to (requester, scopes, how
long, a message, the display names shown), the SHA-256 of the one-time link's secret and its
expiry, and how the person answered (``pending`` → ``accepted`` with the grant it made, or
``declined``). ``management_links``: the person's revocable, rotatable links to their own page
(only the SHA-256 of each secret). Both go with the subject when the subject is erased.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_requests",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "subject_id",
            sa.String(40),
            sa.ForeignKey("subjects.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("tenant", sa.String(128), nullable=False, index=True),
        sa.Column("requester", sa.String(200), nullable=False),
        sa.Column("requester_display_name", sa.String(200), nullable=False),
        sa.Column("tenant_display_name", sa.String(200), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("grant_days", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(2000), nullable=False, server_default=""),
        sa.Column("secret_sha256", sa.String(64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("grant_id", sa.String(40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "management_links",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "subject_id",
            sa.String(40),
            sa.ForeignKey("subjects.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("management_links")
    op.drop_table("consent_requests")
