"""The hand-off to evaluation from a session (events, corrections, manual resolutions)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.db import make_sessionmaker, plain_url
from app.core.handoff import CHANNEL, enqueue_evaluation
from app.core.settings import Settings
from tests import factories as f

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


async def test_queued_from_the_earliest_time_and_announced_at_commit(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, settings: Settings,
) -> None:
    sid = uuid.UUID((await f.shipment_setup(client))["id"])
    await db.execute(text("DELETE FROM evaluation_queue"))
    await db.commit()
    heard: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(plain_url(settings.database_url or ""))
    try:
        await conn.add_listener(CHANNEL, lambda *args: heard.put_nowait(args[3]))
        async with make_sessionmaker(engine)() as session, session.begin():
            await enqueue_evaluation(session, sid, T0 + timedelta(hours=2))
            await enqueue_evaluation(session, sid, T0 + timedelta(hours=1))
            await enqueue_evaluation(session, sid, T0 + timedelta(hours=3))
            await conn.execute("SELECT 1")  # a round trip: nothing is announced before commit
            assert heard.empty()
        assert await asyncio.wait_for(heard.get(), 10) == str(sid)
        queued = await conn.fetch("SELECT shipment_id, dirty_from FROM evaluation_queue")
        assert [tuple(r) for r in queued] == [(sid, T0 + timedelta(hours=1))]
        async with make_sessionmaker(engine)() as session, session.begin():
            await enqueue_evaluation(session, sid, T0 + timedelta(hours=4))
        assert await conn.fetchval("SELECT dirty_from FROM evaluation_queue") == T0 + timedelta(hours=1)
    finally:
        await conn.close()
