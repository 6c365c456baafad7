"""Deleting a webhook subscription keeps its evidence: marked deleted, never removed.

Subscriptions get `deleted_at`/`deleted_by`; the foreign keys from deliveries to subscriptions
and from attempts to deliveries no longer cascade (RESTRICT): a delivery log cannot vanish with
its subscription. Deliveries still pending when a subscription is deleted become `cancelled`.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

DELIVERY_FK = "fk_webhook_deliveries_subscription_id_webhook_subscriptions"
ATTEMPT_FK = "fk_webhook_attempts_delivery_id_webhook_deliveries"


def _foreign_keys(ondelete: str) -> None:
    op.drop_constraint(DELIVERY_FK, "webhook_deliveries", type_="foreignkey")
    op.create_foreign_key(DELIVERY_FK, "webhook_deliveries", "webhook_subscriptions",
                          ["subscription_id"], ["id"], ondelete=ondelete)
    op.drop_constraint(ATTEMPT_FK, "webhook_attempts", type_="foreignkey")
    op.create_foreign_key(ATTEMPT_FK, "webhook_attempts", "webhook_deliveries",
                          ["delivery_id"], ["id"], ondelete=ondelete)


def upgrade() -> None:
    op.add_column("webhook_subscriptions",
                  sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("webhook_subscriptions",
                  sa.Column("deleted_by", sa.String(length=100), nullable=True))
    _foreign_keys("RESTRICT")


def downgrade() -> None:
    _foreign_keys("CASCADE")
    op.drop_column("webhook_subscriptions", "deleted_by")
    op.drop_column("webhook_subscriptions", "deleted_at")
