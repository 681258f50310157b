"""Erasure certificates named by a random id, not the erasures table's row number.

The row number counts every tenant's erasures: a tenant reading the numbers of its own
certificates learned how many people other tenants had erased, and when. ``certificate_id``
(128 random bits, hexadecimal) names a certificate in the console instead; certificates made
before this revision get one each here.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("erasures") as batch:
        batch.add_column(sa.Column("certificate_id", sa.String(32), nullable=True))
    connection = op.get_bind()
    for (row_id,) in connection.execute(sa.text("select id from erasures")).all():
        connection.execute(
            sa.text("update erasures set certificate_id = :cid where id = :id"),
            {"cid": secrets.token_hex(16), "id": row_id},
        )
    with op.batch_alter_table("erasures") as batch:
        batch.alter_column("certificate_id", existing_type=sa.String(32), nullable=False)
        batch.create_index("ix_erasures_certificate_id", ["certificate_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("erasures") as batch:
        batch.drop_index("ix_erasures_certificate_id")
        batch.drop_column("certificate_id")
