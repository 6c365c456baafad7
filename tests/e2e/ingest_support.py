"""Helpers of the ingest end-to-end tests: throttled publishers, polling, broker-session hygiene."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from app.core.broker import BrokerAddress
from app.core.db import plain_url
from app.core.settings import Settings
from ingest import worker
from ingest.batch import PreparedBatch
from ingest.writer import BatchResult

BASE = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
MOSQUITTO_PUB_CHUNK = 50_000  # mosquitto_pub -l silently stops after ~65 k lines (PITFALLS)


class Publisher:
    """A logger-like QoS 1 publisher: at most `window` unacknowledged, resumes after reconnects."""

    def __init__(self, url: str, *, window: int = 100, client_id: str | None = None) -> None:
        address = BrokerAddress.parse(url)
        self.window = window
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"pub-{secrets.token_hex(4)}",
            protocol=mqtt.MQTTv5,
        )
        self.client.reconnect_delay_set(0.1, 1.0)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 300  # resume in-flight messages after a broker restart
        self.client.connect(address.host, address.port, 30, clean_start=False, properties=props)
        self.client.loop_start()
        self._pending: deque[mqtt.MQTTMessageInfo] = deque()
        self.sent = 0

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        self._drain(self.window - 1, 60.0)
        self._pending.append(self.client.publish(topic, payload, qos=1, retain=retain))
        self.sent += 1

    def flush(self, timeout: float = 60.0) -> None:
        self._drain(0, timeout)

    def _drain(self, keep: int, timeout: float) -> None:
        # is_published() rather than wait_for_publish(): a message queued while disconnected has
        # an error code but is still sent after the reconnect.
        deadline = time.monotonic() + timeout
        while self._pending and (len(self._pending) > keep or self._pending[0].is_published()):
            if self._pending[0].is_published():
                self._pending.popleft()
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self._pending)} messages not acknowledged by the broker")
            time.sleep(0.002)

    def close(self) -> None:
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()


def reading_json(i: int, *, temp: float | None = None) -> bytes:
    ts = BASE + timedelta(seconds=i)
    return orjson.dumps({"ts": ts.isoformat().replace("+00:00", "Z"),
                         "temp_c": temp if temp is not None else 4.0 + (i % 40) / 10, "seq": i})


def bulk_publish(url: str, prefix: str, logger_ids: Iterable[str], per_logger: int, *,
                 first: int = 0) -> None:
    """Readings `first`…`per_logger - 1` of each logger, one a message, via mosquitto_pub -l (fast,
    C), the loggers in parallel."""
    address = BrokerAddress.parse(url)
    loggers = list(logger_ids)
    for start in range(first, per_logger, MOSQUITTO_PUB_CHUNK):
        stop = min(start + MOSQUITTO_PUB_CHUNK, per_logger)
        procs = []
        for logger_id in loggers:
            proc = subprocess.Popen(
                ["mosquitto_pub", "-h", address.host, "-p", str(address.port), "-q", "1", "-l",
                 "-t", f"{prefix}/loggers/{logger_id}/telemetry"],
                stdin=subprocess.PIPE,
            )
            procs.append(proc)
            assert proc.stdin is not None
            proc.stdin.write(b"\n".join(reading_json(i) for i in range(start, stop)) + b"\n")
            proc.stdin.close()
        for proc in procs:
            assert proc.wait(timeout=300) == 0


def forget_session(url: str, client_id: str) -> None:
    """End a worker's persistent session on a shared broker so it stops queueing for it."""
    address = BrokerAddress.parse(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    client.connect(address.host, address.port, 10, clean_start=True, properties=props)
    client.loop_start()
    deadline = time.monotonic() + 30
    while not client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 30.0,  # noqa: ASYNC109
                     interval: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; the last value on timeout (then asserted)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


@dataclass
class Ingest:
    """An in-process ingest worker under a topic prefix of its own, and what it committed."""

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


@asynccontextmanager
async def running_worker(settings: Settings, **overrides: Any) -> AsyncIterator[Ingest]:
    """`worker.run` on the test servers until the block ends; its broker session is then ended."""
    live = settings.model_copy(update={
        "topic_prefix": f"{settings.topic_prefix}/{secrets.token_hex(3)}",
        "ingest_batch_wait_ms": 20, **overrides,
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
        await asyncio.wait_for(task, 20 + 2 * live.ingest_statement_timeout_s)
        await conn.close()
        await asyncio.to_thread(forget_session, live.mqtt_url or "", worker.client_id(live))


async def register(run: Ingest, *ids: str) -> None:
    await run.conn.executemany(
        "INSERT INTO loggers (id, reporting_interval_s, status, seq_gaps) VALUES ($1, 300, 'unknown', 0)",
        [(i,) for i in ids],
    )


async def settle(run: Ingest, messages: int, *, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Wait until the worker has committed `messages` messages."""
    async def done() -> bool:
        return run.messages() >= messages

    assert await eventually(done, timeout=timeout), f"{run.messages()} of {messages} messages processed"


@asynccontextmanager
async def gate(settings: Settings, *tables: str) -> AsyncIterator[asyncio.Event]:
    """Holds back every write to `tables` until the event is set (or the block ends)."""
    conn = await asyncpg.connect(plain_url(settings.migration_url or ""))  # the tables' owner
    opened, locked = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {', '.join(tables)} IN SHARE ROW EXCLUSIVE MODE")
            locked.set()
            await opened.wait()

    holder = asyncio.create_task(hold())
    try:
        await asyncio.wait_for(locked.wait(), 10)
        yield opened
    finally:
        opened.set()
        await holder
        await conn.close()
