"""Packaging requalification: the day through which a shipper type's qualification holds.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("packaging", sa.Column("requalified_until", sa.Date()))


def downgrade() -> None:
    op.drop_column("packaging", "requalified_until")
