"""Migrations: upgrade → downgrade → upgrade works, and the models agree with the schema."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from app.core.db import make_engine
from app.core.migrate import downgrade, upgrade
from app.core.models import Base
from migrations.filters import include_object
from tests.servers import Servers


def _diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn, opts={"include_object": include_object, "compare_type": True}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_downgrade_upgrade_and_models_match(servers: Servers) -> None:
    database = servers.new_database("coldchain_migrations")
    # Alembic's env runs its own event loop: drive it from a worker thread. The owner migrates
    # (no superuser needed, as on a managed PostgreSQL).
    import asyncio

    await asyncio.to_thread(upgrade, database.owner_url, service_url=database.url)
    await asyncio.to_thread(downgrade, database.owner_url, "base")
    await asyncio.to_thread(upgrade, database.owner_url, service_url=database.url)
    engine = make_engine(database.owner_url, pool_size=1)
    async with engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    await engine.dispose()
    assert diff == [], diff
