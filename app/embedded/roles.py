"""The embedded cluster's roles: the schema's owner (migrations) and the service's role.

The service role owns nothing and gets its grants from `coldchain migrate` (app/core/db_roles.py).
"""

from __future__ import annotations

OWNER_ROLE = "coldchain_owner"
SERVICE_ROLE = "coldchain_app"

CREATE_ROLES = f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{OWNER_ROLE}') THEN
        CREATE ROLE {OWNER_ROLE} LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{SERVICE_ROLE}') THEN
        CREATE ROLE {SERVICE_ROLE} LOGIN;
    END IF;
END $$
"""

# Data directories from before the roles existed have everything owned by the bootstrap superuser
# (whose objects REASSIGN OWNED refuses to move): hand the database's objects to the owner role.
ADOPT = f"""
DO $$
DECLARE item record;
BEGIN
    EXECUTE format('ALTER DATABASE %I OWNER TO {OWNER_ROLE}', current_database());
    ALTER SCHEMA public OWNER TO {OWNER_ROLE};
    FOR item IN SELECT c.oid::regclass AS name FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relowner = 'postgres'::regrole
              AND c.relkind IN ('r', 'p') LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO {OWNER_ROLE}', item.name);
    END LOOP;
    FOR item IN SELECT c.oid::regclass AS name FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relowner = 'postgres'::regrole AND c.relkind = 'S'
              AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid
                              AND d.deptype IN ('a', 'i')) LOOP
        EXECUTE format('ALTER SEQUENCE %s OWNER TO {OWNER_ROLE}', item.name);
    END LOOP;
    FOR item IN SELECT p.oid::regprocedure AS name FROM pg_proc p
            JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'public' AND p.proowner = 'postgres'::regrole LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO {OWNER_ROLE}', item.name);
    END LOOP;
END $$
"""
