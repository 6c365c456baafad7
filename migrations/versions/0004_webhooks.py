"""Schema changes of the webhook delivery domain: endpoint health, retry window, leases, claim indexes.

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    op.add_column("webhook_subscriptions", sa.Column("description", sa.String(length=200), nullable=True))
    op.add_column("webhook_subscriptions", sa.Column("disabled_at", TS, nullable=True))
    op.add_column(
        "webhook_subscriptions",
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "webhook_deliveries",
        sa.Column("scheduled_at", TS, server_default=sa.text("now()"), nullable=False),
    )
    op.add_column("webhook_deliveries", sa.Column("last_attempt_at", TS, nullable=True))
    op.add_column("webhook_deliveries", sa.Column("leased_until", TS, nullable=True))
    op.add_column("webhook_deliveries", sa.Column("lease_token", sa.Uuid(), nullable=True))
    op.create_index(
        "ix_webhook_deliveries_pending_due", "webhook_deliveries",
        ["subscription_id", "next_attempt_at"], postgresql_where=PENDING,
    )
    op.create_index(
        "ix_webhook_deliveries_pending_order", "webhook_deliveries",
        ["alert_id", "subscription_id", "alert_event_id"], postgresql_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_pending_order", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_pending_due", table_name="webhook_deliveries")
    for column in ("lease_token", "leased_until", "last_attempt_at", "scheduled_at"):
        op.drop_column("webhook_deliveries", column)
    for column in ("consecutive_failures", "disabled_at", "description"):
        op.drop_column("webhook_subscriptions", column)
