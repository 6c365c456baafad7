"""The ingest worker end to end: real mosquitto → worker → real PostgreSQL (and the API on top)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.settings import Settings
from ingest import payload as p
from ingest.batch import Delivery
from ingest.mqtt import MqttSource
from tests import factories as f
from tests.e2e.ingest_support import BASE, Ingest, reading_json, register, running_worker, settle


@pytest.fixture
async def ingest(settings: Settings, db: AsyncSession) -> AsyncIterator[Ingest]:
    async with running_worker(settings) as run:
        yield run


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


async def test_redelivered_senml_gives_one_reading_or_one_quarantine_never_two(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops after the commit, before the PUBACKs: the broker redelivers."""
    await register(ingest, "L1")
    relative = orjson.dumps([{"bn": "urn:dev:L1:", "n": "temp", "u": "Cel", "v": 5.0, "t": -60}])
    absolute = orjson.dumps([{"bt": BASE.timestamp(), "n": "temp", "u": "Cel", "v": 6.0, "t": -60}])
    dropped: list[int] = []
    ack = MqttSource.ack

    def drop_first_ack(source: MqttSource, deliveries: list[Delivery]) -> int:
        if not dropped:
            dropped.append(len(deliveries))
            source._abort()  # the connection is lost before the acknowledgements leave
            return 0
        return ack(source, deliveries)

    monkeypatch.setattr(MqttSource, "ack", drop_first_ack)
    await ingest.publish([(ingest.topic("L1"), relative), (ingest.topic("L1"), absolute)])
    await settle(ingest, 2 + 2)  # committed once, redelivered, committed again
    assert dropped == [2]
    rows = await ingest.conn.fetch("SELECT ts, temp_c FROM readings")
    assert [tuple(r) for r in rows] == [(BASE - timedelta(seconds=60), 6.0)]
    rejected = await ingest.conn.fetch("SELECT reason, reading_index, payload FROM ingest_rejections")
    assert [tuple(r) for r in rejected] == [
        (p.RELATIVE_TIME, 0, b'{"t": -60, "temp_c": 5.0}')]
    assert [(r.stored, r.duplicates, sum(r.rejected.values())) for r in ingest.results] == [
        (1, 0, 1), (0, 1, 0)]


async def test_seq_up_to_two_to_the_63_minus_one_is_stored(ingest: Ingest) -> None:
    await register(ingest, "L1")
    top = 2**63 - 1
    stamp = [(BASE + timedelta(seconds=i)).isoformat() for i in range(4)]
    wrapped = [{"ts": stamp[0], "temp_c": 4, "seq": top - 1}, {"ts": stamp[1], "temp_c": 4, "seq": top},
               {"ts": stamp[2], "temp_c": 4, "seq": 0}]  # the counter wrapped
    await ingest.publish([(ingest.topic("L1"), orjson.dumps({"readings": wrapped}))])
    await settle(ingest, 1)
    await ingest.publish([(ingest.topic("L1"), orjson.dumps({"ts": stamp[3], "temp_c": 4, "seq": top}))])
    await settle(ingest, 2)
    assert [r["seq"] for r in await ingest.conn.fetch("SELECT seq FROM readings ORDER BY ts")] == [
        top - 1, top, 0, top]
    assert await ingest.count("SELECT count(*) FROM ingest_rejections") == 0
    logger = await ingest.conn.fetchrow("SELECT last_seq, seq_gaps FROM loggers")
    assert (logger["last_seq"], logger["seq_gaps"]) == (top, 2**31 - 1)  # 0 → 2^63-1: capped


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
