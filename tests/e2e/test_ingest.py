"""The ingest worker end to end: real mosquitto → worker → real PostgreSQL (and the API on top)."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import plain_url
from app.settings import Settings
from ingest import payload as p
from ingest import worker
from ingest.batch import PreparedBatch
from ingest.writer import BatchResult
from tests import factories as f
from tests.e2e.ingest_support import BASE, Publisher, eventually, forget_session, reading_json


@dataclass
class Ingest:
    settings: Settings
    conn: asyncpg.Connection
    results: list[BatchResult] = field(default_factory=list)

    def topic(self, logger_id: str, kind: str = "telemetry") -> str:
        return f"{self.settings.topic_prefix}/loggers/{logger_id}/{kind}"

    async def count(self, sql: str, *args: Any) -> int:
        return int(await self.conn.fetchval(sql, *args))

    def messages(self) -> int:
        return sum(r.messages for r in self.results)

    async def publish(self, items: list[tuple[str, bytes]], *, retain: bool = False) -> None:
        def send() -> None:
            publisher = Publisher(self.settings.mqtt_url or "")
            try:
                for topic, body in items:
                    publisher.publish(topic, body, retain=retain)
            finally:
                publisher.close()

        await asyncio.to_thread(send)


@pytest.fixture
async def ingest(settings: Settings, db: AsyncSession) -> AsyncIterator[Ingest]:
    live = settings.model_copy(update={
        "topic_prefix": f"{settings.topic_prefix}/{secrets.token_hex(3)}",
        "ingest_batch_wait_ms": 20,
    })
    conn = await asyncpg.connect(plain_url(live.database_url or ""))
    run = Ingest(live, conn)
    stop, ready = asyncio.Event(), asyncio.Event()

    def on_commit(result: BatchResult, _batch: PreparedBatch) -> None:
        run.results.append(result)

    task = asyncio.create_task(worker.run(live, stop, on_commit=on_commit, ready=ready))
    await asyncio.wait_for(ready.wait(), 20)
    try:
        yield run
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        await conn.close()
        await asyncio.to_thread(forget_session, live.mqtt_url or "", worker.client_id(live))


async def register(run: Ingest, *ids: str) -> None:
    await run.conn.executemany(
        "INSERT INTO loggers (id, reporting_interval_s, status, seq_gaps) VALUES ($1, 300, 'unknown', 0)",
        [(i,) for i in ids],
    )


async def settle(run: Ingest, messages: int) -> None:
    """Wait until the worker has committed `messages` messages."""
    async def done() -> bool:
        return run.messages() >= messages

    assert await eventually(done), f"{run.messages()} of {messages} messages processed"


async def test_the_same_reading_delivered_many_times_is_stored_once(ingest: Ingest) -> None:
    await register(ingest, "L1")
    one = reading_json(1)
    batch = orjson.dumps({"readings": [orjson.loads(one), orjson.loads(reading_json(2))]})
    await ingest.publish([(ingest.topic("L1"), one)] * 3 + [(ingest.topic("L1"), batch)])
    await settle(ingest, 4)
    assert await ingest.count("SELECT count(*) FROM readings WHERE logger_id = 'L1'") == 2
    assert sum(r.stored for r in ingest.results) == 2
    assert sum(r.duplicates for r in ingest.results) == 3
    assert await ingest.count("SELECT count(*) FROM ingest_rejections") == 0


async def test_store_and_forward_batch_of_ten_thousand_in_reverse_order(ingest: Ingest) -> None:
    await register(ingest, "L1")
    readings = [orjson.loads(reading_json(i)) for i in range(10_000)][::-1]
    await ingest.publish([(ingest.topic("L1"), orjson.dumps({"readings": readings}))])
    await settle(ingest, 1)
    rows = await ingest.conn.fetch("SELECT ts, temp_c, seq FROM readings WHERE logger_id = 'L1' ORDER BY ts")
    assert [r["seq"] for r in rows] == list(range(10_000))
    assert [r["temp_c"] for r in rows] == [4.0 + (i % 40) / 10 for i in range(10_000)]
    assert rows[-1]["ts"] == BASE + timedelta(seconds=9_999)


def bad_inputs(now: datetime) -> list[tuple[str, bytes, str]]:
    """Every bad-input case of CONTRACT.md: (logger, payload, expected reason)."""
    ok = {"ts": "2026-11-20T08:00:00Z", "temp_c": 4.0}
    future = (now + timedelta(minutes=30)).isoformat()
    return [
        ("L1", b"{not json", p.MALFORMED_JSON),
        ("L1", orjson.dumps({"temp_c": 4.0}), p.MISSING_FIELD),
        ("L1", orjson.dumps({"ts": "2026-11-20T08:00:01Z"}), p.MISSING_FIELD),
        ("L1", b'{"ts": "2026-11-20T08:00:02Z", "temp_c": NaN}', p.NON_FINITE),
        ("L1", orjson.dumps({"ts": "2026-11-20T08:00:03Z", "temp_c": -300}),
         p.TEMPERATURE_OUT_OF_RANGE),
        ("L1", orjson.dumps({"ts": "2026-11-20T08:00:04Z", "temp_c": 150}),
         p.TEMPERATURE_OUT_OF_RANGE),
        ("L1", orjson.dumps({"ts": "2026-11-20T08:00:05Z", "temp_c": 4, "lat": 91, "lon": 0}),
         p.COORDINATES_OUT_OF_RANGE),
        ("L1", orjson.dumps({"ts": "2026-11-20T08:00:06Z", "temp_c": 4, "lat": 0, "lon": 181}),
         p.COORDINATES_OUT_OF_RANGE),
        ("L1", orjson.dumps({"ts": future, "temp_c": 4.0}), p.TS_IN_FUTURE),
        ("L1", json.dumps({**ok, "pad": "x" * (1024 * 1024)}).encode(), p.PAYLOAD_TOO_LARGE),
        ("L1", orjson.dumps({"readings": [ok] * 10_001}), p.BATCH_TOO_LARGE),
        ("GHOST", orjson.dumps(ok), p.UNKNOWN_LOGGER),
        ("bad id", orjson.dumps(ok), p.INVALID_TOPIC),
    ]


async def test_every_bad_input_is_quarantined_and_good_messages_still_flow(
    ingest: Ingest, client: httpx.AsyncClient
) -> None:
    await register(ingest, "L1")
    bad = bad_inputs(datetime.now(UTC))
    before = {reason: rejected_metric(reason) for _, _, reason in bad}
    items: list[tuple[str, bytes]] = []
    for i, (logger_id, body, _) in enumerate(bad):
        items.append((ingest.topic("L1"), reading_json(100 + i)))
        items.append((ingest.topic(logger_id), body))
    items.append((ingest.topic("L1"), reading_json(999)))
    await ingest.publish(items)
    await settle(ingest, len(items))
    assert await ingest.count("SELECT count(*) FROM readings") == len(bad) + 1
    got = await ingest.conn.fetch("SELECT topic, reason, payload FROM ingest_rejections ORDER BY id")
    expected = sorted((ingest.topic(lg), reason) for lg, _, reason in bad)
    assert sorted((r["topic"], r["reason"]) for r in got) == expected
    assert all(len(r["payload"]) <= 64 * 1024 for r in got)
    # Messages are committed in batches (two may be in flight): compare by reason, not position.
    malformed = next(r for r in got if r["reason"] == p.MALFORMED_JSON)
    assert malformed["payload"] == b"{not json"

    listed = (await client.get("/api/v1/ingest/rejections", params={"limit": 1000})).json()
    assert sorted((i["topic"], i["reason"]) for i in listed["items"]) == expected
    listed_malformed = next(i for i in listed["items"] if i["reason"] == p.MALFORMED_JSON)
    assert listed_malformed["topic"] == ingest.topic("L1")
    assert listed_malformed["payload"] == "{not json"
    assert listed_malformed["received_at"].endswith(("Z", "+00:00"))
    too_large = next(i for i in listed["items"] if i["reason"] == p.PAYLOAD_TOO_LARGE)
    assert too_large["payload_truncated"] and too_large["payload_size"] > 1024 * 1024
    counted = Counter(reason for _, _, reason in bad)
    assert {r: rejected_metric(r) - before[r] for r in counted} == counted


def rejected_metric(reason: str) -> float:
    return REGISTRY.get_sample_value("coldchain_ingest_rejected_total", {"reason": reason}) or 0.0


async def test_a_batch_with_bad_readings_stores_the_good_ones(ingest: Ingest) -> None:
    await register(ingest, "L1")
    body = (b'{"readings": [{"ts": "2026-11-20T08:00:00Z", "temp_c": 4},'
            b' {"ts": "2026-11-20T08:01:00Z", "temp_c": NaN},'
            b' {"ts": "2026-11-20T08:02:00Z", "temp_c": 5}]}')
    await ingest.publish([(ingest.topic("L1"), body)])
    await settle(ingest, 1)
    assert await ingest.count("SELECT count(*) FROM readings") == 2
    row = await ingest.conn.fetchrow("SELECT reason, reading_index, payload FROM ingest_rejections")
    assert (row["reason"], row["reading_index"]) == (p.NON_FINITE, 1) and b"NaN" in row["payload"]


async def test_senml_pack_is_accepted(ingest: Ingest) -> None:
    await register(ingest, "L1")
    t0 = BASE.timestamp()
    pack = [{"bn": "urn:dev:L1:", "bt": t0, "n": "temp", "u": "Cel", "v": -75.5},
            {"n": "lat", "u": "lat", "v": 50.03}, {"n": "lon", "u": "lon", "v": 8.57},
            {"n": "temp", "u": "Cel", "v": -75.0, "t": 300}]
    await ingest.publish([(ingest.topic("L1"), orjson.dumps(pack))])
    await settle(ingest, 1)
    rows = await ingest.conn.fetch("SELECT ts, temp_c, lat, lon FROM readings ORDER BY ts")
    assert [tuple(r) for r in rows] == [(BASE, -75.5, 50.03, 8.57),
                                       (BASE + timedelta(minutes=5), -75.0, None, None)]


async def test_status_topic_and_last_seen(ingest: Ingest) -> None:
    await register(ingest, "L1")
    await ingest.publish([(ingest.topic("L1"), reading_json(1))])
    await ingest.publish([(ingest.topic("L1", "status"), b"online")], retain=True)
    await settle(ingest, 2)
    row = await ingest.conn.fetchrow("SELECT status, status_at, last_received_at, last_seq FROM loggers")
    assert row["status"] == "online" and row["last_seq"] == 1
    assert row["status_at"] >= row["last_received_at"]
    await ingest.publish([(ingest.topic("L1", "status"), b"")], retain=True)  # clear the retained


async def test_readings_reach_the_shipment_and_its_evaluation(
    ingest: Ingest, client: httpx.AsyncClient
) -> None:
    shipment = await f.shipment_setup(client, logger_ids=("LOG-1",))
    await ingest.conn.execute("DELETE FROM evaluation_queue")
    await ingest.publish([(ingest.topic("LOG-1"), reading_json(60))])
    await settle(ingest, 1)
    assert str(await ingest.conn.fetchval("SELECT shipment_id FROM readings")) == shipment["id"]
    assert await ingest.conn.fetchval("SELECT dirty_from FROM evaluation_queue") == (
        BASE + timedelta(seconds=60))


async def test_rejection_list_is_for_coordinators_and_pages(
    ingest: Ingest, client: httpx.AsyncClient
) -> None:
    await register(ingest, "L1")
    await ingest.publish([(ingest.topic("L1"), b"bad %d" % i) for i in range(3)])
    await settle(ingest, 3)
    first = (await client.get("/api/v1/ingest/rejections", params={"limit": 2})).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = (await client.get("/api/v1/ingest/rejections",
                             params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [i["payload"] for i in first["items"] + rest["items"]] == ["bad 0", "bad 1", "bad 2"]
    assert rest["next_cursor"] is None
    filtered = await client.get("/api/v1/ingest/rejections", params={"reason": "unknown_logger"})
    assert filtered.json()["items"] == []
    site = await f.site(client)
    for role, status in (("site", 403), ("qp", 403), ("coordinator", 200)):
        body: dict[str, Any] = {"role": role, **({"site_id": site} if role == "site" else {})}
        key = (await f.post(client, "/api-keys", body))["key"]
        answer = await client.get("/api/v1/ingest/rejections",
                                  headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == status, (role, answer.text)
