"""Database roles: the service's grants (applied by `coldchain migrate`) and the start-up check that
warns when the service could rewrite the audit trail (superuser, owner, UPDATE/DELETE/TRUNCATE)."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import unquote, urlsplit

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db import make_engine, plain_url

log = logging.getLogger(__name__)

# What the service may do: read and write the operational tables, append to the audit trail.
# It owns nothing, so it can neither disable a trigger nor alter a table; it is no superuser, so
# it cannot set `session_replication_role` either.
_GRANTS = """
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_log FROM {role};
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {role};
"""
_DATABASE_GRANTS = "GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {role}"

_ROLE_CHECK = """
SELECT current_user AS role, r.rolsuper AS superuser,
       c.oid IS NOT NULL AND pg_has_role(current_user, c.relowner, 'USAGE') AS owner,
       c.oid IS NOT NULL AND (has_table_privilege(c.oid, 'UPDATE')
                              OR has_table_privilege(c.oid, 'DELETE')
                              OR has_table_privilege(c.oid, 'TRUNCATE')) AS rewrite
FROM pg_roles r LEFT JOIN pg_class c ON c.oid = to_regclass('audit_log')
WHERE r.rolname = current_user
"""


def role_warnings(role: str, *, superuser: bool, owner: bool, rewrite: bool) -> list[str]:
    """What is wrong with the service's database role (nothing, for a role that owns nothing)."""
    fix = "connect as a role that owns nothing (README, 'Database roles')"
    if superuser:
        return [f"the service connects as the superuser '{role}': it can switch the audit trail's "
                f"triggers off and rewrite it; {fix}"]
    if owner:
        return [f"the service connects as '{role}', owner of the audit table: it can disable its "
                f"triggers and rewrite it; {fix}"]
    if rewrite:
        return [f"the service's role '{role}' may UPDATE, DELETE or TRUNCATE the audit table; "
                "revoke that (`coldchain migrate` applies the right grants)"]
    return []


async def check_role(conn: AsyncConnection) -> list[str]:
    """The warnings for the role `conn` is connected as (one query)."""
    row = (await conn.execute(text(_ROLE_CHECK))).one()
    return role_warnings(row.role, superuser=row.superuser, owner=row.owner, rewrite=row.rewrite)


async def warn_at_start_up(database_url: str) -> list[str]:
    """Log the service role's warnings once at start-up (a database not up yet is not our
    business here: the roles wait for it themselves)."""
    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            warnings = await check_role(conn)
    except (OSError, SQLAlchemyError) as exc:
        log.info("database role not checked at start-up: %s", exc)
        return []
    finally:
        await engine.dispose()
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def _user_of(url: str) -> str | None:
    user = urlsplit(url).username
    return unquote(user) if user else None


async def _grant(owner_url: str, service_url: str) -> str | None:
    role = _user_of(service_url)
    if role is None:  # libpq's defaults (PGUSER, the OS user): ask the server who that is
        conn = await asyncpg.connect(plain_url(service_url))
        try:
            role = str(await conn.fetchval("SELECT current_user"))
        finally:
            await conn.close()
    conn = await asyncpg.connect(plain_url(owner_url))
    try:
        me, database, owns_database, quoted, quoted_db = await conn.fetchrow(
            "SELECT current_user, current_database(), d.datdba = r.oid, quote_ident($1), "
            "quote_ident(current_database()) FROM pg_database d, pg_roles r "
            "WHERE d.datname = current_database() AND r.rolname = current_user", role,
        )
        if role == me:
            log.warning("the service and the migrations use the same role '%s': no grants to make "
                        "(set COLDCHAIN_MIGRATION_DATABASE_URL to the owner's URL)", role)
            return None
        async with conn.transaction():
            await conn.execute(_GRANTS.format(role=quoted))
            if owns_database:
                await conn.execute(_DATABASE_GRANTS.format(database=quoted_db, role=quoted))
        log.info("database %s: grants for the service role '%s' applied", database, role)
        return role
    finally:
        await conn.close()


def grant_service_role(owner_url: str, service_url: str) -> str | None:
    """Give the service's role (DATABASE_URL's user) exactly its grants, as the owner; the role
    granted, or None when both URLs name the same role. Idempotent: run after every migration."""
    return asyncio.run(_grant(owner_url, service_url))
