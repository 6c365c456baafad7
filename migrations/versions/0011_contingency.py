"""Contingency events: a shipment's lane over time and its hold clock restarted by recharges.

`shipments.lane_id` becomes the lane the shipment is on now (a `rerouted` event moves it; its
`lane_id` names the new lane) and `planned_lane_id` keeps the lane it was registered on;
`recharged_at` is the latest recharge (the hold clock's restart), maintained from the chain.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("shipments", sa.Column("planned_lane_id", sa.Uuid()))
    op.execute("UPDATE shipments SET planned_lane_id = lane_id")
    op.alter_column("shipments", "planned_lane_id", nullable=False)
    op.create_foreign_key("fk_shipments_planned_lane_id_lanes", "shipments", "lanes",
                          ["planned_lane_id"], ["id"])
    op.create_index("ix_shipments_planned_lane_id", "shipments", ["planned_lane_id"])
    op.add_column("shipments", sa.Column("recharged_at", sa.DateTime(timezone=True)))
    op.add_column("shipment_events", sa.Column("lane_id", sa.Uuid()))
    op.create_foreign_key("fk_shipment_events_lane_id_lanes", "shipment_events", "lanes",
                          ["lane_id"], ["id"])


def downgrade() -> None:
    op.execute("UPDATE shipments SET lane_id = planned_lane_id")
    op.drop_constraint("fk_shipment_events_lane_id_lanes", "shipment_events", type_="foreignkey")
    op.drop_column("shipment_events", "lane_id")
    op.drop_column("shipments", "recharged_at")
    op.drop_index("ix_shipments_planned_lane_id", table_name="shipments")
    op.drop_constraint("fk_shipments_planned_lane_id_lanes", "shipments", type_="foreignkey")
    op.drop_column("shipments", "planned_lane_id")
