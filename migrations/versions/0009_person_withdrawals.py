"""Withdrawals by the person, and consent links locked after failed photos.

``consent_grants.withdrawn_by_person``: whether a grant was revoked by the person on their own
page. ``consent_requests.failed_photos``: how many photos shown on the request's page could not
be confirmed; at five the link is locked (status ``locked``), so the page cannot be used to
probe which faces are registered.

The person's withdrawal binds the integrator: a new attested grant that would cover a scope the
person withdrew from the same grantee is refused until the person confirms again (a new
consent request they accept). Every revocation made before this revision is recorded as the
integrator's (``false``): the audit log's ``consent_withdrawn`` entries stay the record of
those.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consent_grants") as batch:
        batch.add_column(
            sa.Column(
                "withdrawn_by_person", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )

    with op.batch_alter_table("consent_requests") as batch:
        batch.add_column(
            sa.Column("failed_photos", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("consent_requests") as batch:
        batch.drop_column("failed_photos")
    with op.batch_alter_table("consent_grants") as batch:
        batch.drop_column("withdrawn_by_person")
