"""Schema changes of the ingest domain.

Quarantine rows get an identity (a redelivered bad message is quarantined once); the raw bytes of
every message that contributed a reading are kept in ingest_messages (ALCOA+ original record).

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ingest_rejections", sa.Column("dedup_key", sa.LargeBinary(), nullable=True))
    op.create_unique_constraint(
        op.f("uq_ingest_rejections_dedup_key"), "ingest_rejections", ["dedup_key"]
    )
    op.create_table(
        "ingest_messages",
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload_sha256", sa.LargeBinary(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
    )
    op.create_index(
        "ix_ingest_messages_received_at", "ingest_messages", ["received_at"],
        postgresql_using="brin",
    )


def downgrade() -> None:
    op.drop_index("ix_ingest_messages_received_at", table_name="ingest_messages")
    op.drop_table("ingest_messages")
    op.drop_constraint(
        op.f("uq_ingest_rejections_dedup_key"), "ingest_rejections", type_="unique"
    )
    op.drop_column("ingest_rejections", "dedup_key")
