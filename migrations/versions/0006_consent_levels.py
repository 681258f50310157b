"""Consent levels: how a grant was obtained (``attested`` or ``person_confirmed``) and the
outstanding one-time confirmation token of a grant (its secret's SHA-256 and expiry).

Every grant made before this revision was asserted by an integrator: it is ``attested``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consent_grants") as batch:
        batch.add_column(
            sa.Column("consent_level", sa.String(32), nullable=False, server_default="attested")
        )
        batch.add_column(sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("confirmation_sha256", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("confirmation_expires_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("consent_grants") as batch:
        batch.drop_column("confirmation_expires_at")
        batch.drop_column("confirmation_sha256")
        batch.drop_column("confirmed_at")
        batch.drop_column("consent_level")
