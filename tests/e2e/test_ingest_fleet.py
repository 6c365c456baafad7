"""Ingest under what real fleets and servers do: a hung database, a receipt racing a batch."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import timedelta

import asyncpg
import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.settings import Settings
from tests import factories as f
from tests.e2e.ingest_support import (
    Ingest,
    eventually,
    gate,
    reading_json,
    register,
    running_worker,
    settle,
)

RECEIVED_AT = f.T0 + timedelta(hours=12)
# The client-side command timeout: short enough to give a hung connection up soon, long enough that
# the retried insert on a fresh connection never hits it on a loaded machine (one retry, not two).
STATEMENT_TIMEOUT_S = 3.0


async def test_a_hung_database_connection_is_given_up_and_the_batch_committed_on_a_new_one(
    settings: Settings, db: AsyncSession
) -> None:
    async with running_worker(settings, ingest_statement_timeout_s=STATEMENT_TIMEOUT_S) as run:
        await register(run, "L1")
        for i in range(2):  # two batches: both writer connections are open (they take turns)
            await run.publish([(run.topic("L1"), reading_json(i))])
            await settle(run, i + 1)
        pids = [r[0] for r in await run.conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'coldchain-ingest'"
            " AND datname = current_database()")]
        assert len(pids) == 2
        retries = retry_metric("connection")
        for pid in pids:  # the server stops answering on those connections, and never times out
            os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            await run.publish([(run.topic("L1"), reading_json(2))])
            await settle(run, 3)
            took = time.monotonic() - started
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        assert await run.count("SELECT count(*) FROM readings") == 3
        # Not before the client-side command timeout gave the hung connection up; settle's own
        # bound is the hang check, how long the retry takes under load is no test's business.
        assert took > STATEMENT_TIMEOUT_S, took
        assert retry_metric("connection") == retries + 1


def retry_metric(cause: str) -> float:
    return REGISTRY.get_sample_value("coldchain_ingest_write_retries_total", {"cause": cause}) or 0.0


async def receipt_world(client: httpx.AsyncClient, run: Ingest) -> str:
    """A shipment of LOG-1, delivered, with one reading before the coming receipt; queue empty."""
    shipment = await f.shipment_setup(client, logger_ids=("LOG-1",),
                                      departed_at=(f.T0 + timedelta(hours=1)).isoformat())
    await f.post(client, f"/shipments/{shipment['id']}/events",
                 {"type": "delivered", "at": (f.T0 + timedelta(hours=10)).isoformat()})
    await run.publish([(run.topic("LOG-1"), reading_at(RECEIVED_AT - timedelta(hours=1)))])
    await settle(run, 1)
    # No queue row: the batch's evaluation hand-off then inserts one, whose foreign-key check
    # takes KEY SHARE on the shipment the receipt holds locked (a deadlock if they conflicted).
    await run.conn.execute("DELETE FROM evaluation_queue")
    return str(shipment["id"])


def reading_at(ts: object) -> bytes:
    return orjson.dumps({"ts": ts, "temp_c": 5.0})


async def lock_waiters(conn: asyncpg.Connection, count: int) -> None:
    async def waiting() -> bool:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database()") >= count

    assert await eventually(waiting, timeout=20, interval=0.02), f"fewer than {count} waiting"


async def receive(client: httpx.AsyncClient, shipment_id: str) -> httpx.Response:
    return await client.post(f"/api/v1/shipments/{shipment_id}/events",
                             json={"type": "received", "at": RECEIVED_AT.isoformat()})


async def links(run: Ingest) -> list[tuple[object, str | None]]:
    rows = await run.conn.fetch("SELECT ts, shipment_id::text FROM readings ORDER BY ts")
    return [(r[0], r[1]) for r in rows]


@pytest.mark.parametrize("first", ["batch", "receipt"])
async def test_receipt_racing_a_batch_leaves_no_post_receipt_reading_linked(
    first: str, settings: Settings, client: httpx.AsyncClient
) -> None:
    """Both held half done at a gate: the batch with its reading written, the receipt with the
    assignment ended; the second one in is then waiting for the first one's logger locks."""
    async with running_worker(settings) as run:
        shipment = await receipt_world(client, run)
        late = [(run.topic("LOG-1"), reading_at(RECEIVED_AT + timedelta(hours=1)))]
        async with gate(settings, "evaluation_queue") as opened:
            if first == "batch":
                await run.publish(late)
                await lock_waiters(run.conn, 1)
                receipt = asyncio.create_task(receive(client, shipment))
            else:
                receipt = asyncio.create_task(receive(client, shipment))
                await lock_waiters(run.conn, 1)
                await run.publish(late)
            await lock_waiters(run.conn, 2)
            opened.set()
            assert (await receipt).status_code == 201
        await settle(run, 2)
        assert await links(run) == [(RECEIVED_AT - timedelta(hours=1), shipment),
                                    (RECEIVED_AT + timedelta(hours=1), None)]


