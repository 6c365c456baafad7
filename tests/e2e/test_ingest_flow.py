"""Ingest flow control on the real broker and PostgreSQL: a byte-bounded buffer, oversized payloads
read as a stream, a keepalive that survives a paused reader, and the broker's size limit."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.broker import BrokerAddress
from app.core.db import plain_url
from app.core.settings import Settings
from app.embedded import EmbeddedBroker, free_port
from ingest import payload as p
from ingest import worker
from ingest.batch import REJECTED_PAYLOAD_MAX
from ingest.mqtt import RECEIVE_MAXIMUM_MESSAGE_BYTES, MqttSource, receive_maximum
from ingest.worker import topic_filters
from tests.e2e.ingest_support import (
    BASE,
    Publisher,
    eventually,
    forget_session,
    gate,
    reading_json,
    register,
    running_worker,
    settle,
)

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
pytestmark = pytest.mark.slow


def batch_of(readings: int, first: int) -> bytes:
    """A store-and-forward batch of `readings` readings from second `first` after BASE."""
    return orjson.dumps({"readings": [
        {"ts": (BASE + timedelta(seconds=first + i)).isoformat(), "temp_c": 4.5, "seq": first + i,
         "lat": 50.0331, "lon": 8.5703, "battery_pct": 87.5} for i in range(readings)]})


def memory_kib(pid: int) -> dict[str, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {k: int(fields[k].split()[0]) for k in ("VmRSS", "VmHWM")}


@dataclass
class WorkerProcess:
    """`python -m app.cli ingest` in its own process, so its memory is its own."""

    proc: subprocess.Popen[bytes]
    log: Path
    metrics_url: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def metric(self, name: str) -> float:
        async with httpx.AsyncClient() as http:
            text = (await http.get(self.metrics_url)).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name + " ") or line.startswith(name + "{"))


@pytest.fixture
def worker_process(settings: Settings, tmp_path: Path) -> Iterator[tuple[WorkerProcess, Settings]]:
    port = free_port()
    live = settings.model_copy(update={
        "topic_prefix": f"{settings.topic_prefix}/{secrets.token_hex(3)}",
        "ingest_client_id": f"flood-{secrets.token_hex(3)}", "ingest_buffer_bytes": 8 * MiB,
    })
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("COLDCHAIN_")},
           "DATABASE_URL": live.database_url or "", "MQTT_URL": live.mqtt_url or "",
           "COLDCHAIN_TOPIC_PREFIX": live.topic_prefix, "COLDCHAIN_INGEST_GROUP": live.ingest_group,
           "COLDCHAIN_INGEST_CLIENT_ID": live.ingest_client_id or "",
           "COLDCHAIN_INGEST_BUFFER_BYTES": str(live.ingest_buffer_bytes),
           "COLDCHAIN_INGEST_STATEMENT_TIMEOUT_S": "120", "COLDCHAIN_INGEST_METRICS_PORT": str(port),
           "COLDCHAIN_DATA_DIR": str(tmp_path / "data")}
    log = tmp_path / "ingest.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "ingest"], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    running = WorkerProcess(proc, log, f"http://127.0.0.1:{port}/metrics")
    try:
        yield running, live
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        forget_session(live.mqtt_url or "", live.ingest_client_id or "")
    assert "Traceback" not in running.output(), running.output()


async def test_a_flood_of_large_messages_stays_within_the_byte_budget(
    worker_process: tuple[WorkerProcess, Settings], db: AsyncSession
) -> None:
    """Loggers flush ~1 MiB batches and some send 1–1.5 MiB: the worker reads no further than its
    budget while the database holds it back, and stores or quarantines every message after."""
    running, live = worker_process

    async def subscribed() -> bool:
        assert running.proc.poll() is None, running.output()
        return "subscribed" in running.output()

    assert await eventually(subscribed, timeout=30), running.output()
    conn = await asyncpg.connect(plain_url(live.database_url or ""))
    try:
        await conn.execute("INSERT INTO loggers (id, reporting_interval_s, status, seq_gaps)"
                           " VALUES ('FLOOD', 300, 'unknown', 0)")
        rng = random.Random(13)
        # Read whole (≤ 1 MiB): what the byte budget bounds; cheap to judge (quarantined at once).
        garbled = [b"\x00" + rng.randbytes(rng.randint(MiB - 100 * 1024, MiB - 1)) for _ in range(100)]
        # Over 1 MiB: streamed, only their heads kept.
        oversized = [rng.randbytes(rng.randint(MiB + 1, 3 * MiB // 2)) for _ in range(40)]
        valid = [batch_of(9500, 9500 * i) for i in range(4)]  # parsed and stored
        assert all(900 * 1024 < len(b) <= MiB for b in valid)
        flood = garbled[:50] + oversized[:20] + valid + oversized[20:] + garbled[50:]
        topic = f"{live.topic_prefix}/loggers/FLOOD/telemetry"
        await asyncio.sleep(1.0)  # start-up allocations settle
        before = memory_kib(running.proc.pid)["VmRSS"]
        async with gate(live, "readings", "ingest_rejections") as opened:
            await asyncio.to_thread(publish_all, live.mqtt_url or "", topic, flood)

            async def paused() -> bool:
                return await running.metric("coldchain_ingest_read_pauses_total") >= 1

            assert await eventually(paused, timeout=30)

            async def stuck() -> bool:  # both writers wait on the gate: nothing moves any more
                return await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'coldchain-ingest'"
                    " AND wait_event_type = 'Lock'") == worker.WRITERS

            assert await eventually(stuck, timeout=30)
            held = memory_kib(running.proc.pid)["VmRSS"]
            opened.set()

        async def accounted() -> bool:
            return (await conn.fetchval("SELECT count(*) FROM ingest_rejections") == 140
                    and await conn.fetchval("SELECT count(*) FROM readings") == 4 * 9500)

        assert await eventually(accounted, timeout=120, interval=0.5)
        peak = memory_kib(running.proc.pid)["VmHWM"]
        rows = await conn.fetch("SELECT reason, payload_size, payload_sha256, length(payload) AS kept"
                                " FROM ingest_rejections ORDER BY payload_size")
    finally:
        await conn.close()
    assert [(r["reason"], r["payload_size"], bytes(r["payload_sha256"]), r["kept"]) for r in rows] == sorted(
        [(p.MALFORMED_JSON, len(b), hashlib.sha256(b).digest(), REJECTED_PAYLOAD_MAX) for b in garbled]
        + [(p.PAYLOAD_TOO_LARGE, len(b), hashlib.sha256(b).digest(), REJECTED_PAYLOAD_MAX)
           for b in oversized], key=lambda r: r[1])
    print(f"RSS before {before / 1024:.0f} MiB, paused {held / 1024:.0f} MiB, "
          f"peak {peak / 1024:.0f} MiB; flood {sum(map(len, flood)) / MiB:.0f} MiB")  # -s shows it
    budget = live.ingest_buffer_bytes // 1024
    assert held - before <= budget + 48 * 1024
    assert peak - before <= budget + 48 * 1024


def publish_all(url: str, topic: str, payloads: list[bytes]) -> None:
    publisher = Publisher(url, window=20)
    try:
        for body in payloads:
            publisher.publish(topic, body)
    finally:
        publisher.close()


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def paused_since(pauses: float) -> None:
    async def paused() -> bool:
        return metric("coldchain_ingest_read_pauses_total") > pauses

    assert await eventually(paused, timeout=30, interval=0.05)


async def round_trip(source: MqttSource, topic: str) -> None:
    """A SUBSCRIBE and its SUBACK on the source's own connection: the broker answers in order, so
    whatever it had sent us before (messages, or none held back by flow control) is read by then."""
    client = source._client
    assert client is not None
    source.subscribed.clear()
    client.subscribe(topic, qos=1)
    await asyncio.wait_for(source.subscribed.wait(), 10)


async def test_receive_maximum_is_sized_from_the_byte_budget_and_the_broker_keeps_to_it(
    settings: Settings,
) -> None:
    """The worker announces an MQTT 5 Receive Maximum of its byte budget ÷ 4 KiB, and mosquitto
    has exactly that many messages out to it while none is acknowledged; acknowledgements let more
    through, each message once and in order.

    mosquitto 2.0.11 gives back a whole window per PUBACK (8, then 16, 24, … out at once with one
    PUBACK per round trip; cf. eclipse-mosquitto/mosquitto#2301), so once acknowledgements flow the
    broker's flow control bounds nothing and the byte budget is the bound (the flood test)."""
    budget = 8 * RECEIVE_MAXIMUM_MESSAGE_BYTES
    window = receive_maximum(budget)
    assert window == 8
    url = settings.mqtt_url or ""
    prefix = f"{settings.topic_prefix}/{secrets.token_hex(3)}"
    source = MqttSource(url, client_id=f"window-{secrets.token_hex(3)}", topics=topic_filters(prefix),
                        group=None, buffer_bytes=budget)
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(stop))
    try:
        await asyncio.wait_for(source.subscribed.wait(), 20)
        bodies = [reading_json(i) for i in range(3 * window + 3)]  # 27 × ~300 B: far below the budget
        await asyncio.to_thread(publish_all, url, f"{prefix}/loggers/L1/telemetry", bodies)
        await round_trip(source, f"{prefix}/probe/first")
        assert [d.payload for d in source.inbox.items] == bodies[:window]
        acked, outstanding = 0, [window]
        for step in range(len(bodies)):  # acknowledged one, two, three… at a time
            arrived = list(source.inbox.items)
            more = arrived[acked:acked + step + 1]
            assert source.ack(more) == len(more)
            acked += len(more)
            await round_trip(source, f"{prefix}/probe/{step}")
            assert len(source.inbox) >= min(len(bodies), acked + window)  # each ack frees a place
            assert not source.inbox.full
            outstanding.append(len(source.inbox) - acked)
            if len(source.inbox) == len(bodies):
                break
        assert [d.payload for d in source.inbox.items] == bodies  # each once, in order
        print(f"Receive Maximum {window}: out unacknowledged after each round {outstanding}")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await asyncio.to_thread(forget_session, url, source.client_id)


async def test_the_connection_stays_up_while_reading_is_paused(
    settings: Settings, db: AsyncSession
) -> None:
    keepalive = 4
    async with running_worker(settings, ingest_keepalive_s=keepalive, ingest_buffer_bytes=MiB) as run:
        await register(run, "L1")
        disconnects = metric("coldchain_ingest_broker_disconnects_total")
        pauses = metric("coldchain_ingest_read_pauses_total")
        batches = [batch_of(2000, 2000 * i) for i in range(8)]  # ~210 KB each: over the budget
        async with gate(run.settings, "readings") as opened:
            await run.publish([(run.topic("L1"), body) for body in batches])
            await paused_since(pauses)
            # Three keepalive periods paused: paho's own keepalive disconnects after two.
            deadline = time.monotonic() + 3 * keepalive
            while time.monotonic() < deadline:
                assert metric("coldchain_ingest_broker_disconnects_total") == disconnects
                await asyncio.sleep(0.1)
            opened.set()
        await settle(run, len(batches))
        assert await run.count("SELECT count(*) FROM readings") == 8 * 2000
        # Nor did the broker drop us (it would have redelivered what was not acknowledged).
        assert metric("coldchain_ingest_broker_disconnects_total") == disconnects
        assert sum(r.duplicates for r in run.results) == 0


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(tmp_path / "broker", port=free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def test_a_broker_that_stops_answering_is_left_and_found_again(
    settings: Settings, db: AsyncSession, own_broker: EmbeddedBroker
) -> None:
    async with running_worker(settings, mqtt_url=own_broker.url, ingest_keepalive_s=2) as run:
        disconnects = metric("coldchain_ingest_broker_disconnects_total")
        assert own_broker.process is not None
        own_broker.process.send_signal(signal.SIGSTOP)  # alive to TCP, deaf to MQTT
        try:
            async def left() -> bool:
                return metric("coldchain_ingest_broker_disconnects_total") > disconnects

            assert await eventually(left, timeout=15, interval=0.05)  # ~2 keepalive periods
        finally:
            own_broker.process.send_signal(signal.SIGCONT)

        async def back() -> bool:
            return metric("coldchain_ingest_broker_connected") == 1

        assert await eventually(back, timeout=30)
        await register(run, "L1")
        await run.publish([(run.topic("L1"), batch_of(1, 0))])
        await settle(run, 1)


async def test_a_paused_reader_notices_a_broker_that_went_away(
    settings: Settings, db: AsyncSession, own_broker: EmbeddedBroker
) -> None:
    async with running_worker(settings, mqtt_url=own_broker.url, ingest_keepalive_s=2,
                              ingest_buffer_bytes=MiB) as run:
        await register(run, "L1")
        disconnects = metric("coldchain_ingest_broker_disconnects_total")
        pauses = metric("coldchain_ingest_read_pauses_total")
        async with gate(run.settings, "readings"):
            await run.publish([(run.topic("L1"), batch_of(2000, 2000 * i)) for i in range(8)])
            await paused_since(pauses)
            own_broker.kill()  # its host answers our next PINGREQ with a reset

            async def left() -> bool:
                return metric("coldchain_ingest_broker_disconnects_total") > disconnects

            assert await eventually(left, timeout=15, interval=0.05)
            own_broker.start()


async def test_payloads_up_to_the_brokers_packet_limit_are_quarantined_and_larger_ones_refused(
    settings: Settings, db: AsyncSession
) -> None:
    """The recommended broker settings (docs/mosquitto.conf, used by the embedded broker): a
    payload over the contract's 1 MiB reaches the worker and is quarantined with its size, hash
    and head; a packet over max_packet_size is refused loudly, its sender disconnected and never
    acknowledged (message_size_limit instead acknowledges it to an MQTT 3.1.1 sender and drops it)."""
    async with running_worker(settings) as run:
        await register(run, "L1")
        big = random.Random(7).randbytes(5 * MiB)
        await run.publish([(run.topic("L1"), big)])
        await settle(run, 1)
        row = await run.conn.fetchrow("SELECT reason, payload_size, payload_sha256, payload"
                                      " FROM ingest_rejections")
        assert (row["reason"], row["payload_size"], bytes(row["payload_sha256"]), bytes(row["payload"])) == (
            p.PAYLOAD_TOO_LARGE, 5 * MiB, hashlib.sha256(big).digest(), big[:REJECTED_PAYLOAD_MAX])

        outcome = await asyncio.to_thread(publish_v311, run.settings.mqtt_url or "", run.topic("L1"),
                                          bytes(16 * MiB + 1))
        assert outcome == {"disconnected": True, "acknowledged": False}
        # The broker had dropped the refused packet's sender before this one was published:
        # once this one is committed, the refused one would have arrived too.
        await run.publish([(run.topic("L1"), batch_of(1, 0))])
        await settle(run, 2)
        assert run.messages() == 2
        assert await run.count("SELECT count(*) FROM ingest_rejections") == 1
        assert await run.count("SELECT count(*) FROM readings") == 1


def publish_v311(url: str, topic: str, payload: bytes) -> dict[str, bool]:
    """One QoS 1 publish from an MQTT 3.1.1 client: was it acknowledged, was the client dropped?"""
    address = BrokerAddress.parse(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311,
                         client_id=f"big-{secrets.token_hex(3)}")
    dropped = threading.Event()
    client.on_disconnect = lambda *_: dropped.set()
    client.connect(address.host, address.port, 30)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1)
        dropped.wait(20)
        return {"disconnected": dropped.is_set(), "acknowledged": info.is_published()}
    finally:
        client.disconnect()
        client.loop_stop()
