"""Database roles: the service's exact grants, and warnings when it could rewrite the audit trail."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.api.main import create_app
from app.core.db import plain_url
from app.core.db_roles import grant_service_role, warn_at_start_up
from app.core.migrate import upgrade
from app.core.settings import Settings
from tests.servers import Servers

OWNER_WARNING = ("the service connects as '{role}', owner of the audit table: it can disable its "
                 "triggers and rewrite it; connect as a role that owns nothing (README, "
                 "'Database roles')")


async def _readyz(settings: Settings, engine: AsyncEngine) -> dict[str, object]:
    app = create_app(settings, engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as http:
        response = await http.get("/readyz")
    assert response.status_code == 200, response.text  # a warning, not unreadiness
    return dict(response.json())


async def test_readyz_warns_when_the_service_could_rewrite_the_audit_trail(
    db: AsyncSession, settings: Settings, engine: AsyncEngine, owner_engine: AsyncEngine,
    superuser_engine: AsyncEngine, servers: Servers,
) -> None:
    assert (await _readyz(settings, engine))["warnings"] == []
    owner = servers.database.name + "_owner"
    assert (await _readyz(settings, owner_engine))["warnings"] == [
        OWNER_WARNING.format(role=owner)
    ]
    (superuser,) = (await _readyz(settings, superuser_engine))["warnings"]  # type: ignore[misc]
    assert superuser.startswith("the service connects as the superuser 'postgres'")


async def test_start_up_logs_the_warning(
    db: AsyncSession, settings: Settings, servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="app.core.db_roles"):
        assert await warn_at_start_up(settings.database_url or "") == []
        owner = servers.database.owner_url
        assert await warn_at_start_up(owner) == [
            OWNER_WARNING.format(role=servers.database.name + "_owner")
        ]
    assert [r.getMessage() for r in caplog.records] == [
        OWNER_WARNING.format(role=servers.database.name + "_owner")
    ]


async def _privileges(url: str, role: str) -> dict[str, list[str]]:
    conn = await asyncpg.connect(plain_url(url))
    try:
        rows = await conn.fetch(
            "SELECT t, array_agg(p ORDER BY p) AS granted FROM unnest($1::text[]) t, "
            "unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER']) p "
            "WHERE has_table_privilege($2, t, p) GROUP BY t",
            ["audit_log", "shipments", "readings", "alembic_version"], role)
        return {r["t"]: list(r["granted"]) for r in rows}
    finally:
        await conn.close()


async def test_migrate_gives_the_service_role_exactly_its_grants(servers: Servers) -> None:
    database = servers.new_database("coldchain_roles")
    await asyncio.to_thread(upgrade, database.owner_url, service_url=database.url)
    role = database.name + "_app"
    assert await _privileges(database.owner_url, role) == {
        "alembic_version": ["SELECT"],
        "audit_log": ["INSERT", "SELECT"],
        "readings": ["DELETE", "INSERT", "SELECT", "UPDATE"],
        "shipments": ["DELETE", "INSERT", "SELECT", "UPDATE"],
    }
    # A grant too many (by hand) is warned about; the next migrate takes it back.
    conn = await asyncpg.connect(plain_url(database.owner_url))
    await conn.execute(f"GRANT UPDATE ON audit_log TO {role}")
    await conn.close()
    assert await warn_at_start_up(database.url) == [
        f"the service's role '{role}' may UPDATE, DELETE or TRUNCATE the audit table; revoke that "
        "(`coldchain migrate` applies the right grants)"
    ]
    assert await asyncio.to_thread(grant_service_role, database.owner_url, database.url) == role
    assert await warn_at_start_up(database.url) == []
    # One URL for both (COLDCHAIN_MIGRATION_DATABASE_URL unset): nothing to grant, and a warning.
    assert await asyncio.to_thread(grant_service_role, database.owner_url,
                                   database.owner_url) is None
