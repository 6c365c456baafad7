"""E-mail notifications: mail_deliveries (one per recipient and alert event) and mail_attempts.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mail_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("alert_event_id", sa.BigInteger(), nullable=False),
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("notice", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("scheduled_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_attempt_at", TS, nullable=True),
        sa.Column("leased_until", TS, nullable=True),
        sa.Column("lease_token", sa.Uuid(), nullable=True),
        sa.Column("last_reply_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_mail_deliveries_user_id_users",
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["alert_event_id"], ["alert_events.id"],
                                name="fk_mail_deliveries_alert_event_id_alert_events",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_mail_deliveries"),
        sa.UniqueConstraint("user_id", "alert_event_id",
                            name="uq_mail_deliveries_user_id_alert_event_id"),
    )
    op.create_index("ix_mail_deliveries_user_id", "mail_deliveries", ["user_id"])
    op.create_index("ix_mail_deliveries_alert_id", "mail_deliveries", ["alert_id"])
    op.create_index("ix_mail_deliveries_pending_due", "mail_deliveries", ["next_attempt_at"],
                    postgresql_where=sa.text("state = 'pending'"))
    op.create_table(
        "mail_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("attempted_at", TS, nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reply_code", sa.Integer(), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["mail_deliveries.id"],
                                name="fk_mail_attempts_delivery_id_mail_deliveries",
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name="pk_mail_attempts"),
    )
    op.create_index("ix_mail_attempts_delivery_id", "mail_attempts", ["delivery_id"])


def downgrade() -> None:
    op.drop_index("ix_mail_attempts_delivery_id", table_name="mail_attempts")
    op.drop_table("mail_attempts")
    op.drop_index("ix_mail_deliveries_pending_due", table_name="mail_deliveries")
    op.drop_index("ix_mail_deliveries_alert_id", table_name="mail_deliveries")
    op.drop_index("ix_mail_deliveries_user_id", table_name="mail_deliveries")
    op.drop_table("mail_deliveries")
