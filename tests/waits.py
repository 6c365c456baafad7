"""Waiting on a condition, never on time: a bounded poll, and what PostgreSQL shows of sessions."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

Database = AsyncEngine | asyncpg.Connection


async def until(check: Callable[[], object | Awaitable[object]], what: str, *,
                timeout_s: float = 30.0) -> None:
    """Poll `check` (plain or async) until it is truthy; fail naming `what` after `timeout_s`,
    which only a hang reaches."""
    deadline = time.monotonic() + timeout_s
    while not await _value(check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.02)


async def _value(value: object) -> object:
    return await value if inspect.isawaitable(value) else value


async def _count(db: Database, sql: str, *params: object) -> int:
    if isinstance(db, asyncpg.Connection):
        return int(await db.fetchval(sql, *params))
    named = {f"p{i + 1}": value for i, value in enumerate(params)}
    for name in named:
        sql = sql.replace(f"${name[1:]}", f":{name}")
    async with db.connect() as conn:
        return int((await conn.execute(text(sql), named)).scalar_one())


async def lock_waiters(db: Database) -> int:
    """Sessions of this database waiting for a lock another session holds."""
    return await _count(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                            "current_database() AND wait_event_type = 'Lock'")


async def listeners(db: Database, channel: str) -> int:
    """Sessions of this database whose latest statement was LISTEN `channel`."""
    return await _count(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                            "current_database() AND query ILIKE 'LISTEN%' || $1 || '%'", channel)


async def evaluation_idle(db: Database, shipment_ids: list[str]) -> bool:
    """The alerts worker has nothing left to do for these shipments as of now: nothing queued,
    nothing claimed and unfinished, no time-driven check due. What it would raise, it has."""
    return not await _count(db, """
        SELECT (SELECT count(*) FROM evaluation_queue WHERE shipment_id::text = ANY($1))
             + (SELECT count(*) FROM evaluation_pending WHERE shipment_id::text = ANY($1))
             + (SELECT count(*) FROM shipment_state WHERE shipment_id::text = ANY($1)
                AND next_check_at <= now())""", [str(i) for i in shipment_ids])
