"""Signed QP decisions: the signature manifest stored with a shipment's release decision.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("shipments", sa.Column("signer_user_id", sa.Uuid(), nullable=True))
    op.create_foreign_key("fk_shipments_signer_user_id_users", "shipments", "users",
                          ["signer_user_id"], ["id"])
    op.add_column("shipments", sa.Column("signer_name", sa.String(length=200), nullable=True))
    op.add_column("shipments", sa.Column("signer_email", sa.String(length=254), nullable=True))
    op.add_column("shipments", sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("shipments", sa.Column("signature_meaning", sa.String(length=64), nullable=True))


def downgrade() -> None:
    for column in ("signature_meaning", "signed_at", "signer_email", "signer_name"):
        op.drop_column("shipments", column)
    op.drop_constraint("fk_shipments_signer_user_id_users", "shipments", type_="foreignkey")
    op.drop_column("shipments", "signer_user_id")
