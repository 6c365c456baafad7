"""The batch writer against the real PostgreSQL: dedup, conflicts, links, hand-off, logger state."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import plain_url
from app.core.handoff import CHANNEL
from app.core.settings import Settings
from ingest import payload as p
from ingest.batch import Assembler, Delivery, PreparedBatch
from ingest.writer import Writer
from tests import factories as f
from tests.waits import lock_waiters, until

PREFIX = "cc"
T0 = f.T0


def msg(logger_id: str, body: Any, *, kind: str = "telemetry", mid: int = 1) -> Delivery:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return Delivery(f"{PREFIX}/loggers/{logger_id}/{kind}".encode(), raw, mid, 0, time.time())


def reading(minutes: float, temp: float = 5.0, **extra: Any) -> dict[str, Any]:
    return {"ts": (T0 + timedelta(minutes=minutes)).isoformat(), "temp_c": temp, **extra}


def batch(*deliveries: Delivery) -> PreparedBatch:
    return Assembler(PREFIX).assemble(list(deliveries))


@pytest.fixture
async def conn(db: AsyncSession, settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(plain_url(settings.database_url or ""))
    yield connection
    await connection.close()


@pytest.fixture
async def writer(db: AsyncSession, settings: Settings) -> AsyncIterator[Writer]:
    w = Writer(plain_url(settings.database_url or ""), PREFIX)
    yield w
    await w.close()


async def add_loggers(conn: asyncpg.Connection, *ids: str) -> None:
    await conn.executemany(
        "INSERT INTO loggers (id, reporting_interval_s, status, seq_gaps) VALUES ($1, 300, 'unknown', 0)",
        [(i,) for i in ids],
    )


async def test_duplicates_are_stored_once_and_a_different_value_is_a_conflict(
    writer: Writer, conn: asyncpg.Connection
) -> None:
    await add_loggers(conn, "L1")
    first = await writer.write(batch(msg("L1", reading(0, 4.5)), msg("L1", reading(0, 4.5))))
    assert (first.stored, first.duplicates, first.conflicts) == (1, 1, 0)
    again = await writer.write(batch(msg("L1", reading(0, 4.5))))
    assert (again.stored, again.duplicates, again.conflicts) == (0, 1, 0)
    changed = await writer.write(batch(msg("L1", reading(0, 9.9))))
    assert (changed.stored, changed.duplicates, changed.conflicts) == (0, 0, 1)
    assert changed.rejected == {p.DUPLICATE_CONFLICT: 1}
    assert await conn.fetchval("SELECT temp_c FROM readings WHERE logger_id = 'L1'") == 4.5
    row = await conn.fetchrow("SELECT reason, detail, payload FROM ingest_rejections")
    assert row["reason"] == p.DUPLICATE_CONFLICT and "temp_c stored 4.5, received 9.9" in row["detail"]
    assert orjson.loads(row["payload"])["temp_c"] == 9.9


async def test_a_conflict_inside_a_batch_keeps_the_first_arrival(
    writer: Writer, conn: asyncpg.Connection
) -> None:
    await add_loggers(conn, "L1")
    result = await writer.write(batch(msg("L1", {"readings": [reading(1, 3.0), reading(1, 7.0)]})))
    assert (result.stored, result.conflicts) == (1, 1)
    assert await conn.fetchval("SELECT temp_c FROM readings") == 3.0
    assert await conn.fetchval("SELECT reading_index FROM ingest_rejections") == 1


async def test_readings_link_to_the_shipment_of_their_device_time_and_wake_evaluation(
    client: httpx.AsyncClient, writer: Writer, conn: asyncpg.Connection
) -> None:
    shipment = await f.shipment_setup(client, logger_ids=("LOG-1",))
    shipment_id = uuid.UUID(shipment["id"])
    await conn.execute("DELETE FROM evaluation_queue")
    notified: list[str] = []
    await conn.add_listener(CHANNEL, lambda *args: notified.append(args[3]))
    result = await writer.write(batch(msg("LOG-1", {"readings": [
        reading(-10), reading(30), reading(20)]})))
    assert result.shipments == {shipment_id: T0 + timedelta(minutes=20)}
    rows = await conn.fetch("SELECT ts, shipment_id FROM readings ORDER BY ts")
    assert [r["shipment_id"] for r in rows] == [None, shipment_id, shipment_id]
    assert await conn.fetchval("SELECT dirty_from FROM evaluation_queue") == T0 + timedelta(minutes=20)
    await writer.write(batch(msg("LOG-1", reading(5))))
    assert await conn.fetchval("SELECT dirty_from FROM evaluation_queue") == T0 + timedelta(minutes=5)
    await writer.write(batch(msg("LOG-1", reading(50))))
    assert await conn.fetchval("SELECT dirty_from FROM evaluation_queue") == T0 + timedelta(minutes=5)
    await until(lambda: len(notified) >= 3, "three notifications")
    assert notified == [str(shipment_id)] * 3


async def test_assignment_window_is_half_open(
    client: httpx.AsyncClient, writer: Writer, conn: asyncpg.Connection
) -> None:
    shipment = await f.shipment_setup(client, logger_ids=("LOG-1",))
    await conn.execute("UPDATE shipment_loggers SET assigned_until = $1", T0 + timedelta(hours=1))
    await writer.write(batch(msg("LOG-1", {"readings": [reading(0), reading(59), reading(60)]})))
    rows = await conn.fetch("SELECT shipment_id FROM readings ORDER BY ts")
    assert [str(r[0]) if r[0] else None for r in rows] == [shipment["id"], shipment["id"], None]


async def test_registration_racing_a_batch_still_links_its_readings(
    client: httpx.AsyncClient, writer: Writer, conn: asyncpg.Connection, settings: Settings
) -> None:
    shipment = await f.shipment_setup(client, logger_ids=("LOG-1",))
    await f.logger(client, "LOG-2")
    other = await asyncpg.connect(plain_url(settings.database_url or ""))
    try:
        # A registration in flight: its assignment is not visible yet, and it holds the logger.
        registration = other.transaction()
        await registration.start()
        await other.execute(
            "INSERT INTO shipment_loggers (shipment_id, logger_id, assigned_from) VALUES ($1, $2, $3)",
            uuid.UUID(shipment["id"]), "LOG-2", T0,
        )
        write = asyncio.create_task(writer.write(batch(msg("LOG-2", reading(10)))))
        await until(lambda: lock_waiters(conn), "the batch waiting for the registration's lock")
        assert not write.done()
        backfilled = await other.execute(
            "UPDATE readings SET shipment_id = $1 WHERE logger_id = 'LOG-2' AND shipment_id IS NULL",
            uuid.UUID(shipment["id"]),
        )
        assert backfilled == "UPDATE 0"  # the batch is not committed, so this cannot see it
        await registration.commit()
        result = await asyncio.wait_for(write, 10)
    finally:
        await other.close()
    assert result.shipments == {uuid.UUID(shipment["id"]): T0 + timedelta(minutes=10)}
    assert str(await conn.fetchval("SELECT shipment_id FROM readings WHERE logger_id = 'LOG-2'")) == (
        shipment["id"])


async def test_logger_status_last_seen_and_sequence_gaps(
    writer: Writer, conn: asyncpg.Connection
) -> None:
    await add_loggers(conn, "L1")
    await writer.write(batch(msg("L1", {"readings": [reading(m, seq=s) for m, s in
                                                     ((1, 1), (2, 2), (5, 5))]})))
    logger = await conn.fetchrow("SELECT * FROM loggers WHERE id = 'L1'")
    assert (logger["last_seq"], logger["seq_gaps"]) == (5, 2)
    assert logger["last_reading_ts"] == T0 + timedelta(minutes=5)
    assert logger["last_received_at"] is not None and logger["status"] == "unknown"
    await writer.write(batch(msg("L1", reading(3, seq=3)), msg("L1", "online", kind="status")))
    logger = await conn.fetchrow("SELECT * FROM loggers WHERE id = 'L1'")
    assert (logger["last_seq"], logger["seq_gaps"], logger["status"]) == (5, 1, "online")
    assert logger["last_reading_ts"] == T0 + timedelta(minutes=5)
    await writer.write(batch(msg("L1", reading(9, seq=9)), msg("L1", "offline", kind="status")))
    logger = await conn.fetchrow("SELECT * FROM loggers WHERE id = 'L1'")
    assert (logger["last_seq"], logger["seq_gaps"], logger["status"]) == (9, 4, "offline")


async def test_sequence_numbers_up_to_two_to_the_63_minus_one(
    writer: Writer, conn: asyncpg.Connection
) -> None:
    await add_loggers(conn, "L1")
    top = 2**63 - 1
    await writer.write(batch(msg("L1", {"readings": [reading(1, seq=0), reading(2, seq=top)]})))
    await writer.write(batch(msg("L1", reading(3, seq=top)), msg("L1", reading(4, seq=1))))
    assert [r[0] for r in await conn.fetch("SELECT seq FROM readings ORDER BY ts")] == [0, top, top, 1]
    logger = await conn.fetchrow("SELECT last_seq, seq_gaps FROM loggers")
    assert (logger["last_seq"], logger["seq_gaps"]) == (1, 2**31 - 1)  # 2^63 - 2 skipped: capped


async def test_a_stream_split_across_batches_counts_no_false_gaps(
    writer: Writer, conn: asyncpg.Connection
) -> None:
    await add_loggers(conn, "L1")
    # Two workers of a shared subscription each get every other message.
    await writer.write(batch(*[msg("L1", reading(s, seq=s)) for s in (1, 3, 5, 7)]))
    await writer.write(batch(*[msg("L1", reading(s, seq=s)) for s in (2, 4, 6, 8)]))
    assert await conn.fetchval("SELECT seq_gaps FROM loggers") == 0
    assert await conn.fetchval("SELECT last_seq FROM loggers") == 8


async def test_unknown_logger_is_quarantined(writer: Writer, conn: asyncpg.Connection) -> None:
    await add_loggers(conn, "L1")
    result = await writer.write(batch(msg("L1", reading(0)), msg("NOPE", reading(0)),
                                      msg("NOPE", "online", kind="status")))
    assert result.stored == 1 and result.rejected == {p.UNKNOWN_LOGGER: 2}
    assert await conn.fetchval("SELECT count(*) FROM readings WHERE logger_id = 'NOPE'") == 0


async def test_quarantine_is_idempotent_for_the_same_input(
    writer: Writer, conn: asyncpg.Connection
) -> None:
    await add_loggers(conn, "L1")
    bad = batch(msg("L1", b"{broken"), msg("L1", {"readings": [reading(0), {"ts": 1}]}))
    assert (await writer.write(bad)).rejected == {p.MALFORMED_JSON: 1, p.MISSING_FIELD: 1}
    again = await writer.write(batch(msg("L1", b"{broken"), msg("L1", {"readings": [reading(0),
                                                                                   {"ts": 1}]})))
    assert again.rejected == {} and again.duplicates == 1
    assert await conn.fetchval("SELECT count(*) FROM ingest_rejections") == 2


async def test_raw_bytes_are_kept_once_and_found_from_the_reading(
    writer: Writer, conn: asyncpg.Connection
) -> None:
    await add_loggers(conn, "L1")
    raw = orjson.dumps({"readings": [reading(0), reading(1)]})
    await writer.write(batch(msg("L1", raw)))
    await writer.write(batch(msg("L1", raw)))  # a redelivery adds nothing
    found = await conn.fetch(
        "SELECT m.topic, m.payload FROM readings r JOIN ingest_messages m"
        " ON m.received_at = r.received_at AND m.payload_sha256 = r.payload_sha256")
    assert [(row["topic"], row["payload"]) for row in found] == [(f"{PREFIX}/loggers/L1/telemetry", raw)] * 2
    assert await conn.fetchval("SELECT count(*) FROM ingest_messages") == 1
    assert await conn.fetchval("SELECT payload_sha256 FROM readings LIMIT 1") == hashlib.sha256(raw).digest()


async def test_writing_a_committed_batch_again_changes_nothing(
    client: httpx.AsyncClient, writer: Writer, conn: asyncpg.Connection
) -> None:
    """An unknown commit outcome is resolved by writing the batch again."""
    await f.shipment_setup(client, logger_ids=("LOG-1",))
    prepared = batch(msg("LOG-1", {"readings": [reading(1, seq=1), reading(4, seq=4)]}),
                     msg("LOG-1", b"{nope"))
    await writer.write(prepared)
    snapshot = await _state(conn)
    result = await writer.write(prepared)
    assert (result.stored, result.duplicates, result.rejected) == (0, 2, {})
    assert await _state(conn) == snapshot


async def _state(conn: asyncpg.Connection) -> list[Any]:
    return [
        await conn.fetch("SELECT * FROM readings ORDER BY ts"),
        await conn.fetch("SELECT id, reason FROM ingest_rejections ORDER BY id"),
        await conn.fetchval("SELECT count(*) FROM ingest_messages"),
        await conn.fetch("SELECT last_seq, seq_gaps, last_reading_ts FROM loggers ORDER BY id"),
        await conn.fetch("SELECT shipment_id, dirty_from FROM evaluation_queue"),
    ]


async def test_ten_thousand_readings_in_reverse_order(writer: Writer, conn: asyncpg.Connection) -> None:
    await add_loggers(conn, "L1")
    items = [reading(m / 6, temp=m % 40 - 20, seq=m) for m in range(10_000)][::-1]
    result = await writer.write(batch(msg("L1", {"readings": items})))
    assert result.stored == 10_000
    got = await conn.fetch("SELECT seq FROM readings WHERE logger_id = 'L1' ORDER BY ts")
    assert [r[0] for r in got] == list(range(10_000))
    assert await conn.fetchval("SELECT seq_gaps FROM loggers") == 0


async def test_statements_survive_a_new_connection(writer: Writer, conn: asyncpg.Connection) -> None:
    await add_loggers(conn, "L1")
    await writer.write(batch(msg("L1", reading(0))))
    writer.discard()
    assert (await writer.write(batch(msg("L1", reading(1))))).stored == 1


def test_reading_identity_is_microsecond_precision() -> None:
    assert datetime.fromisoformat("2026-11-20T08:00:00.0000001+00:00") == T0
