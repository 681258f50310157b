"""Stored manifests know whose stamp they are and how identifying their fingerprint is (issue 17).

``manifests.tenant``: the tenant whose request was stamped, so that a fingerprint search finds
only the verifying tenant's stamps. Existing rows take it from the audit log (the decision entry
of the manifest's decision names its tenant); a row with no such entry stays NULL, which only
the operator's search sees (fail closed).

``manifests.fingerprint_information``: how many of the fingerprint's 64 coefficients the
stamped picture decided (``guard/provenance/fingerprint.py``); fingerprints below the floor are
never matched. Existing rows cannot be measured (the picture is not kept) and stay NULL, except
the two fingerprints only a picture with nothing in it has (``8000000000000000``: any flat
colour or a 1x1 image; ``0000000000000000``: flat black), which are marked 0.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

DEGENERATE_FINGERPRINTS = ("8000000000000000", "0000000000000000")

_manifests = sa.table(
    "manifests",
    sa.column("record_id", sa.BigInteger),
    sa.column("decision_id", sa.String),
    sa.column("fingerprint", sa.String),
    sa.column("tenant", sa.String),
    sa.column("fingerprint_information", sa.SmallInteger),
)
_audit = sa.table("audit_entries", sa.column("decision_id", sa.String), sa.column("entry", sa.Text))


def upgrade() -> None:
    with op.batch_alter_table("manifests") as batch:
        batch.add_column(sa.Column("tenant", sa.String(128), nullable=True))
        batch.add_column(sa.Column("fingerprint_information", sa.SmallInteger, nullable=True))
        batch.create_index("ix_manifests_tenant", ["tenant"])
    connection = op.get_bind()
    pairs = connection.execute(
        sa.select(_manifests.c.record_id, _audit.c.entry).join(
            _audit, _audit.c.decision_id == _manifests.c.decision_id
        )
    ).all()
    for record_id, entry in pairs:
        tenant = json.loads(entry).get("tenant")
        if isinstance(tenant, str):
            connection.execute(
                sa.update(_manifests)
                .where(_manifests.c.record_id == record_id)
                .values(tenant=tenant)
            )
    connection.execute(
        sa.update(_manifests)
        .where(_manifests.c.fingerprint.in_(DEGENERATE_FINGERPRINTS))
        .values(fingerprint_information=0)
    )


def downgrade() -> None:
    with op.batch_alter_table("manifests") as batch:
        batch.drop_index("ix_manifests_tenant")
        batch.drop_column("fingerprint_information")
        batch.drop_column("tenant")
