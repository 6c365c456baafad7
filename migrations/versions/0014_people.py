"""People: user accounts (Argon2id hashes, lockout, e-mail preferences), their sessions, and the
signature manifest of a shipment's release decision (signed by a QP person).

Emails are stored lower-case (a CHECK), so the unique constraint is case-insensitive.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("site_id", sa.Uuid(), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("notify_email", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("notify_min_severity", sa.String(length=16), server_default="critical",
                  nullable=False),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", TS, nullable=True),
        sa.Column("password_changed_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'coordinator', 'site', 'qp')", name=op.f("ck_users_role")),
        sa.CheckConstraint("(role = 'site') = (site_id IS NOT NULL)", name=op.f("ck_users_site_scope")),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_users_email_lower")),
        sa.CheckConstraint("notify_min_severity IN ('info', 'warning', 'critical')",
                           name=op.f("ck_users_notify_min_severity")),
        sa.CheckConstraint("failed_logins >= 0", name=op.f("ck_users_failed_logins")),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_users_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("last_seen_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("revoked_reason", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_sessions_token_hash")),
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"])
    op.add_column("shipments", sa.Column("signer_user_id", sa.Uuid(), nullable=True))
    op.create_foreign_key("fk_shipments_signer_user_id_users", "shipments", "users",
                          ["signer_user_id"], ["id"])
    op.add_column("shipments", sa.Column("signer_name", sa.String(length=200), nullable=True))
    op.add_column("shipments", sa.Column("signer_email", sa.String(length=254), nullable=True))
    op.add_column("shipments", sa.Column("signed_at", TS, nullable=True))
    op.add_column("shipments", sa.Column("signature_meaning", sa.String(length=64), nullable=True))


def downgrade() -> None:
    for column in ("signature_meaning", "signed_at", "signer_email", "signer_name"):
        op.drop_column("shipments", column)
    op.drop_constraint("fk_shipments_signer_user_id_users", "shipments", type_="foreignkey")
    op.drop_column("shipments", "signer_user_id")
    op.drop_index("ix_user_sessions_user_id", table_name="user_sessions")
    op.drop_table("user_sessions")
    op.drop_table("users")
