"""Arrival forecasts: `shipment_forecasts` (one per shipment, kept by the alerts engine) and
`lane_forecast_models` (a lane's delivered history reduced to transit and segment times).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "shipment_forecasts",
        sa.Column("shipment_id", sa.Uuid(), nullable=False),
        sa.Column("lane_id", sa.Uuid(), nullable=False),
        sa.Column("on_time_probability", sa.Float(), nullable=False),
        sa.Column("arrival_p50", TS, nullable=False),
        sa.Column("arrival_p90", TS, nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("delivered_n", sa.Integer(), nullable=False),
        sa.Column("hold_deadline", TS, nullable=False),
        sa.Column("leg_started_at", TS, nullable=True),
        sa.Column("segment", sa.Integer(), nullable=False),
        sa.Column("segment_since", TS, nullable=True),
        sa.Column("overrun_h", sa.Float(), nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("computed_at", TS, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipments.id"], ondelete="CASCADE",
                                name="fk_shipment_forecasts_shipment_id_shipments"),
        sa.ForeignKeyConstraint(["lane_id"], ["lanes.id"], ondelete="CASCADE",
                                name="fk_shipment_forecasts_lane_id_lanes"),
        sa.PrimaryKeyConstraint("shipment_id", name="pk_shipment_forecasts"),
    )
    op.create_index("ix_shipment_forecasts_on_time_probability", "shipment_forecasts",
                    ["on_time_probability"])
    op.create_table(
        "lane_forecast_models",
        sa.Column("lane_id", sa.Uuid(), nullable=False),
        sa.Column("delivered_n", sa.Integer(), nullable=False),
        sa.Column("last_delivered_at", TS, nullable=True),
        sa.Column("totals_h", postgresql.JSONB(), nullable=False),
        sa.Column("segments_h", postgresql.JSONB(), nullable=False),
        sa.Column("built_at", TS, server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(["lane_id"], ["lanes.id"], ondelete="CASCADE",
                                name="fk_lane_forecast_models_lane_id_lanes"),
        sa.PrimaryKeyConstraint("lane_id", name="pk_lane_forecast_models"),
    )


def downgrade() -> None:
    op.drop_table("lane_forecast_models")
    op.drop_index("ix_shipment_forecasts_on_time_probability", table_name="shipment_forecasts")
    op.drop_table("shipment_forecasts")
