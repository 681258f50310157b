"""The public-figure blocklist in the database (issue 21): one row per saved generation, so every
host of a deployment reads the same blocklist from the one database (guard/identity/
blocklist_store.py) instead of its own data folder.

``generation`` is the primary key and is not generated: a writer inserts the generation it read
plus one, so two writers that started from the same generation collide on the key and the
second is refused (optimistic concurrency, 409). ``index_blob`` is the FAISS index encrypted with
the template key (embeddings are encrypted at rest like templates); ``index_sha256`` is of the
plaintext. ``figures_json`` is the sidecar (ids, names, aliases, vector ids: not biometric).
Older generations keep their row (who, when, counts, checksums: the audit log names them) but
lose their blob and sidecar, which are set to NULL once three newer generations exist.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blocklist_generations",
        sa.Column("generation", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("format", sa.Integer(), nullable=False),
        sa.Column("engine", sa.String(32), nullable=False),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column("figure_count", sa.Integer(), nullable=False),
        sa.Column("vector_count", sa.Integer(), nullable=False),
        sa.Column("index_blob", sa.LargeBinary(), nullable=True),
        sa.Column("index_sha256", sa.String(64), nullable=False),
        sa.Column("figures_json", sa.Text(), nullable=True),
        sa.Column("figures_sha256", sa.String(64), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("blocklist_generations")
