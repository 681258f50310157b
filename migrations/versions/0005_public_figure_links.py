"""Public-figure links are verified acts: who linked a subject to a figure, when, on what evidence.

Before this revision any tenant could set ``subjects.public_figure_id`` itself, so no existing
link was verified. Upgrading clears those links (fail closed: the figure's face is blocked again
until an operator links it with evidence); downgrading drops the record of who linked.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subjects") as batch:
        batch.add_column(sa.Column("public_figure_linked_by", sa.String(128), nullable=True))
        batch.add_column(
            sa.Column("public_figure_linked_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("public_figure_link_evidence", sa.String(64), nullable=True))
    op.execute("UPDATE subjects SET public_figure_id = NULL")


def downgrade() -> None:
    with op.batch_alter_table("subjects") as batch:
        batch.drop_column("public_figure_link_evidence")
        batch.drop_column("public_figure_linked_at")
        batch.drop_column("public_figure_linked_by")
