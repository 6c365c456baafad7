"""Schema changes of the evaluation (alerts engine) domain.

Checkpoints for replaying late data, the sweep's due time, excursion and alert bookkeeping.

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluation_checkpoints",
        sa.Column("shipment_id", sa.Uuid(), nullable=False),
        sa.Column("logger_id", sa.String(length=64), nullable=False),
        sa.Column("upto_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipments.id"],
                                name=op.f("fk_evaluation_checkpoints_shipment_id_shipments"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("shipment_id", "logger_id", "upto_ts",
                                name=op.f("pk_evaluation_checkpoints")),
    )
    op.create_table(
        "evaluation_pending",
        sa.Column("shipment_id", sa.Uuid(), nullable=False),
        sa.Column("dirty_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="1", nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipments.id"],
                                name=op.f("fk_evaluation_pending_shipment_id_shipments"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("shipment_id", name=op.f("pk_evaluation_pending")),
    )
    op.add_column("shipment_state",
                  sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_shipment_state_next_check_at"), "shipment_state", ["next_check_at"])
    op.add_column("excursions", sa.Column("unknown_s", sa.Float(), server_default="0",
                                          nullable=False))
    op.add_column("excursions", sa.Column("alarmed", sa.Boolean(), server_default="false",
                                          nullable=False))
    op.add_column("alerts", sa.Column("severity_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("alerts", sa.Column("occurrences", sa.Integer(), server_default="1",
                                      nullable=False))


def downgrade() -> None:
    op.drop_column("alerts", "occurrences")
    op.drop_column("alerts", "severity_since")
    op.drop_column("excursions", "alarmed")
    op.drop_column("excursions", "unknown_s")
    op.drop_index(op.f("ix_shipment_state_next_check_at"), table_name="shipment_state")
    op.drop_column("shipment_state", "next_check_at")
    op.drop_table("evaluation_pending")
    op.drop_table("evaluation_checkpoints")
