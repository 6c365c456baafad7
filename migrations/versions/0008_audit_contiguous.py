"""Audit records are numbered without holes: an insert must take the id right after the head.

The application numbers records under the chain's lock (not from the identity sequence, which a
rolled-back transaction would leave with a hole), so a missing id can only mean a deleted record;
`coldchain audit verify` reports such gaps. Records written before this revision may have holes
left by rolled-back transactions.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Same key as app.core.audit._CHAIN_LOCK ("cold").
CHAIN_LOCK = 0x636F6C64
GENESIS_HEX = "00" * 32


def _check_link(first_rule: str, id_rule: str, message: str, first_note: str = "") -> str:
    return f"""
CREATE OR REPLACE FUNCTION coldchain_audit_check_link() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head_id bigint;
    head_hash bytea;
BEGIN
    PERFORM pg_advisory_xact_lock({CHAIN_LOCK});
    SELECT id, hash INTO head_id, head_hash FROM audit_log ORDER BY id DESC LIMIT 1;
    IF head_id IS NULL THEN
        IF NEW.prev_hash <> '\\x{GENESIS_HEX}'::bytea OR {first_rule} THEN
            RAISE EXCEPTION 'audit_log: the first record must link to the genesis hash{first_note}'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    ELSIF NEW.prev_hash <> head_hash OR {id_rule} THEN
        RAISE EXCEPTION {message}, NEW.id, head_id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$
"""


def upgrade() -> None:
    op.execute(_check_link(
        "NEW.id <> 1", "NEW.id <> head_id + 1",
        "'audit_log: record % does not link to the head of the chain (record %): it must carry "
        "the next id and the head''s hash'",
        " and be number 1",
    ))


def downgrade() -> None:
    op.execute(_check_link(
        "false", "NEW.id <= head_id",
        "'audit_log: record % does not link to the head of the chain (record %)'",
    ))
