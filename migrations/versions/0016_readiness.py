"""Readiness: required document kinds per lane, documents attached to shipments (bytes in
PostgreSQL), and a departure's override of the readiness gate.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("lanes", sa.Column("required_documents", postgresql.ARRAY(sa.String(64)),
                                     server_default="{}", nullable=False))
    op.add_column("shipment_events", sa.Column("override_reason", sa.Text()))
    op.add_column("shipment_events", sa.Column("override_unready", postgresql.JSONB()))
    op.create_table(
        "shipment_documents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("shipment_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.String(100), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.CheckConstraint("size = octet_length(content)", name="ck_shipment_documents_size"),
        sa.ForeignKeyConstraint(["shipment_id"], ["shipments.id"], ondelete="CASCADE",
                                name="fk_shipment_documents_shipment_id_shipments"),
        sa.PrimaryKeyConstraint("id", name="pk_shipment_documents"),
    )
    op.create_index("ix_shipment_documents_shipment_id_kind", "shipment_documents",
                    ["shipment_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_shipment_documents_shipment_id_kind", table_name="shipment_documents")
    op.drop_table("shipment_documents")
    op.drop_column("shipment_events", "override_unready")
    op.drop_column("shipment_events", "override_reason")
    op.drop_column("lanes", "required_documents")
