"""Shared fixtures: real servers once per run, a migrated database, a clean state per test."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.db import make_engine, make_sessionmaker
from app.core.migrate import upgrade
from app.core.models import Base
from app.core.settings import Settings
from tests import servers as test_servers

ADMIN_KEY = "test-admin-" + "k" * 24


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[test_servers.Servers]:
    running = test_servers.start(tmp_path_factory.mktemp("servers"))
    try:
        # As in production: migrations as the owner, then the service role's grants.
        upgrade(running.database.owner_url, service_url=running.database.url)
        yield running
    finally:
        running.close()


@pytest.fixture(scope="session")
def settings(servers: test_servers.Servers, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=servers.database.url,
        migration_database_url=servers.database.owner_url,
        mqtt_url=servers.mqtt_url,
        topic_prefix=f"cctest-{secrets.token_hex(3)}/v1",
        admin_api_key=ADMIN_KEY,
        webhook_allow_private=True,
        data_dir=Path(tmp_path_factory.mktemp("data")),
        ingest_group=f"cctest-{secrets.token_hex(3)}",
    )


@pytest.fixture(scope="session")
def mqtt_url(settings: Settings) -> str:
    return settings.mqtt_url or ""


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The service's role, which owns nothing: what the code under test connects as."""
    eng = make_engine(settings.database_url or "", pool_size=5)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
async def owner_engine(servers: test_servers.Servers) -> AsyncIterator[AsyncEngine]:
    """The schema's owner (what migrations run as): for DDL in tests and tampering as the owner."""
    eng = make_engine(servers.database.owner_url, pool_size=2)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
async def superuser_engine(servers: test_servers.Servers) -> AsyncIterator[AsyncEngine]:
    """The cluster's superuser on the test database: clean-up between tests."""
    eng = make_engine(servers.database.superuser_url, pool_size=2)
    yield eng
    await eng.dispose()


async def truncate_all(engine: AsyncEngine) -> None:
    """Empty every table that has rows (TRUNCATE of ~100 empty partitions costs ~0.3 s a test);
    `engine` is a superuser's (the audit trail's triggers are bypassed in replica mode)."""
    names = [t.name for t in Base.metadata.sorted_tables if t.name != "readings"]
    async with engine.begin() as conn:
        partitions = (
            await conn.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'readings'::regclass"
                )
            )
        ).scalars().all()
        candidates = names + list(partitions)
        probe = " UNION ALL ".join(
            f"SELECT '{n}' WHERE EXISTS (SELECT 1 FROM \"{n}\")" for n in candidates
        )
        busy = (await conn.execute(text(probe))).scalars().all()
        if busy:
            # Replica role: the audit trail's append-only triggers do not stand in a test's clean-up.
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            tables = ", ".join(f'"{n}"' for n in busy)
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def db(engine: AsyncEngine, superuser_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A clean database (every table emptied) and a session on it as the service's role."""
    await truncate_all(superuser_engine)
    async with make_sessionmaker(engine)() as session:
        yield session


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
async def client(
    db: AsyncSession, settings: Settings, engine: AsyncEngine, admin_headers: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """The API in-process (real database), authenticated as admin."""
    from app.api.main import create_app

    app = create_app(settings, engine=engine)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=admin_headers
    ) as http:
        yield http
