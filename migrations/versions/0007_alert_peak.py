"""Alerts carry their peak (`peak_c`, the worst value across loggers) and when a new episode or a
worse severity put an acknowledged alert back to open (`reopened_at`, escalation waits from there).

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("peak_c", sa.Float(), nullable=True))
    op.add_column("alerts", sa.Column("reopened_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE alerts SET peak_c = (details->>'peak_c')::float8 "
        "WHERE kind IN ('temperature_high', 'temperature_low', 'temperature_critical') "
        "AND jsonb_typeof(details->'peak_c') = 'number'"
    )


def downgrade() -> None:
    op.drop_column("alerts", "reopened_at")
    op.drop_column("alerts", "peak_c")
