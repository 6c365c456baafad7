"""Schema changes of the security and audit domain.

- audit_log is append-only: triggers refuse UPDATE, DELETE and TRUNCATE (they are ordinary
  triggers, so `session_replication_role = replica`, a superuser's switch, and
  `ALTER TABLE … DISABLE TRIGGER`, the owner's, still bypass them: the hash chain is what makes
  such tampering visible), and an INSERT must link to the current head of the chain.
- indexes for the audit filters (actor, time), and CHECK constraints on API key roles and scope.

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa  # noqa: F401

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Same key as app.core.audit._CHAIN_LOCK ("cold"): appends are serialised even by other writers.
CHAIN_LOCK = 0x636F6C64
GENESIS_HEX = "00" * 32

REFUSE_CHANGE = """
CREATE FUNCTION coldchain_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'audit records are never changed; append a new record instead';
END $$
"""

CHECK_LINK = f"""
CREATE FUNCTION coldchain_audit_check_link() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head_id bigint;
    head_hash bytea;
BEGIN
    PERFORM pg_advisory_xact_lock({CHAIN_LOCK});
    SELECT id, hash INTO head_id, head_hash FROM audit_log ORDER BY id DESC LIMIT 1;
    IF head_id IS NULL THEN
        IF NEW.prev_hash <> '\\x{GENESIS_HEX}'::bytea THEN
            RAISE EXCEPTION 'audit_log: the first record must link to the genesis hash'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    ELSIF NEW.prev_hash <> head_hash OR NEW.id <= head_id THEN
        RAISE EXCEPTION 'audit_log: record % does not link to the head of the chain (record %)',
            NEW.id, head_id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$
"""


def upgrade() -> None:
    op.execute(REFUSE_CHANGE)
    op.execute(CHECK_LINK)
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION coldchain_audit_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION coldchain_audit_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_chain_link BEFORE INSERT ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION coldchain_audit_check_link()"
    )
    op.create_index("ix_audit_log_actor_id", "audit_log", ["actor", "id"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_check_constraint(
        op.f("ck_api_keys_role"), "api_keys", "role IN ('admin', 'coordinator', 'site', 'qp')"
    )
    op.create_check_constraint(
        op.f("ck_api_keys_site_scope"), "api_keys", "(role = 'site') = (site_id IS NOT NULL)"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_api_keys_site_scope"), "api_keys", type_="check")
    op.drop_constraint(op.f("ck_api_keys_role"), "api_keys", type_="check")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_index("ix_audit_log_actor_id", table_name="audit_log")
    op.execute("DROP TRIGGER audit_log_chain_link ON audit_log")
    op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
    op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
    op.execute("DROP FUNCTION coldchain_audit_check_link()")
    op.execute("DROP FUNCTION coldchain_audit_refuse_change()")
