"""A message the database refuses is quarantined on its own; the rest of its batch is stored."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import plain_url
from app.core.settings import Settings
from ingest import worker
from ingest.batch import Assembler, Delivery
from ingest.payload import STORAGE_ERROR
from ingest.writer import Writer


def delivery(logger_id: str, minute: int, temp: float) -> Delivery:
    body = orjson.dumps({"ts": f"2026-11-20T08:{minute:02d}:00Z", "temp_c": temp})
    return Delivery(f"cc/loggers/{logger_id}/telemetry".encode(), body, minute + 1, 0, time.time())


async def test_a_refused_message_is_isolated_and_quarantined(
    db: AsyncSession, settings: Settings
) -> None:
    url = plain_url(settings.database_url or "")
    conn = await asyncpg.connect(plain_url(settings.migration_url or ""))  # the owner adds a rule
    await conn.execute("INSERT INTO loggers (id, reporting_interval_s, status, seq_gaps)"
                       " VALUES ('L1', 300, 'unknown', 0)")
    # A rule of the database (not of the parser) that one valid-looking reading breaks.
    await conn.execute("ALTER TABLE readings ADD CONSTRAINT test_refuse CHECK (temp_c <> 66.6)")
    writer = Writer(url, "cc")
    assembler = Assembler("cc")
    try:
        batch = assembler.assemble([delivery("L1", 0, 5.0), delivery("L1", 1, 66.6),
                                    delivery("L1", 2, 6.0)])
        result = await worker._write_durably(writer, assembler, batch, asyncio.Event())
    finally:
        await conn.execute("ALTER TABLE readings DROP CONSTRAINT test_refuse")
        await writer.close()
    assert result is not None
    assert (result.stored, dict(result.rejected)) == (2, {STORAGE_ERROR: 1})
    temps = [r[0] for r in await conn.fetch("SELECT temp_c FROM readings ORDER BY ts")]
    assert temps == [5.0, 6.0]
    row = await conn.fetchrow("SELECT reason, detail, payload FROM ingest_rejections")
    assert row["reason"] == STORAGE_ERROR and "test_refuse" in row["detail"]
    assert orjson.loads(row["payload"])["temp_c"] == 66.6
    await conn.close()
