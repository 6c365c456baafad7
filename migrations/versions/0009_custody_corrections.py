"""Custody events: late entries and coordinators' corrections (new time or void), kept on the row.

A correction never deletes: a moved event keeps the time first recorded (`original_at`), a voided
one stays with `voided_at`; who, when and why are on the row and every before/after is in the
audit trail.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = ("late_entry", "original_at", "corrected_by", "corrected_at", "correction_reason",
           "voided_at")


def upgrade() -> None:
    op.add_column("shipment_events", sa.Column(
        "late_entry", sa.Boolean(), nullable=False, server_default=sa.text("false")))
    op.add_column("shipment_events", sa.Column("original_at", sa.DateTime(timezone=True)))
    op.add_column("shipment_events", sa.Column("corrected_by", sa.String(100)))
    op.add_column("shipment_events", sa.Column("corrected_at", sa.DateTime(timezone=True)))
    op.add_column("shipment_events", sa.Column("correction_reason", sa.Text()))
    op.add_column("shipment_events", sa.Column("voided_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("shipment_events", name)
