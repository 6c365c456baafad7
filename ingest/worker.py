"""The ingest role: MQTT inbox → size/time-bounded batches → one transaction each → ack in order."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from app.core.db import plain_url
from app.core.settings import Settings
from app.core.waiting import wait_any
from ingest import metrics
from ingest.batch import Assembler, PreparedBatch, rejection_row
from ingest.mqtt import MqttSource
from ingest.payload import STORAGE_ERROR, Rejected
from ingest.writer import BatchResult, Writer

log = logging.getLogger(__name__)
CommitHook = Callable[[BatchResult, PreparedBatch], None]
MAX_BATCH_BYTES = 2 * 1024 * 1024
IDLE_LINGER_S = 0.005
# Transactions in flight per worker: PostgreSQL stores one batch while the next is copied in.
# Acks stay in arrival order; a conflicting value in the next batch may then win the race for
# its key (either way one value is stored and the other quarantined as a conflict).
WRITERS = 2
LAG_SAMPLES = 64

# The database went away (restart, failover, network): reconnect and write the same batch again.
_CONNECTION_ERRORS = (
    OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
)
# A data error names the batch, not the database: write message by message to isolate it.
_DATA_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, ValueError, TypeError,
                OverflowError)


def client_id(settings: Settings) -> str:
    """Stable across restarts (the broker keeps the session); set it per worker when several share a host."""
    if settings.ingest_client_id:
        return settings.ingest_client_id
    scope = hashlib.sha256(f"{settings.topic_prefix}|{settings.ingest_group}".encode()).hexdigest()
    return f"coldchain-ingest-{socket.gethostname()}-{scope[:8]}"


def topic_filters(prefix: str) -> list[str]:
    return [f"{prefix}/loggers/+/telemetry", f"{prefix}/loggers/+/status"]


def _set_unless_cancelled(event: asyncio.Event, task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        event.set()


async def run(
    settings: Settings, stop: asyncio.Event, *, on_commit: CommitHook | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Run one ingest worker until `stop` is set; a committed batch is acknowledged, nothing else.

    `on_commit(result, batch)` is called after each batch is committed and acknowledged (the
    in-process hook point; the evaluation engine is woken through evaluation_queue + NOTIFY);
    `ready` is set once the broker has acknowledged the subscriptions.
    """
    if not settings.database_url or not settings.mqtt_url:
        raise ValueError("the ingest worker needs DATABASE_URL and MQTT_URL")
    source = MqttSource(
        settings.mqtt_url, client_id=client_id(settings), topics=topic_filters(settings.topic_prefix),
        group=settings.ingest_group or None, buffer_bytes=settings.ingest_buffer_bytes,
        keepalive_s=settings.ingest_keepalive_s,
    )
    writers = [Writer(plain_url(settings.database_url), settings.topic_prefix,
                      timeout_s=settings.ingest_statement_timeout_s) for _ in range(WRITERS)]
    assembler = Assembler(settings.topic_prefix)
    handoff: asyncio.Queue[PreparedBatch | None] = asyncio.Queue(maxsize=1)
    closing = asyncio.Event()
    connection = asyncio.create_task(source.run(closing), name="ingest-mqtt")
    writing = _Writing()
    batcher = asyncio.create_task(_batch_loop(source, assembler, handoff, settings, writing),
                                  name="ingest-batch")
    committer = asyncio.create_task(
        _write_loop(writers, source, assembler, handoff, stop, on_commit, writing),
        name="ingest-write"
    )
    stopping = asyncio.create_task(stop.wait())
    signal = asyncio.create_task(source.subscribed.wait())
    if ready is not None:
        signal.add_done_callback(functools.partial(_set_unless_cancelled, ready))
    try:
        done, _ = await asyncio.wait(
            [connection, batcher, committer, stopping], return_when=asyncio.FIRST_COMPLETED
        )
        for task in done:
            if task is not stopping and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        stopping.cancel()
        signal.cancel()
        batcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await batcher
        if not committer.done():
            await handoff.put(None)  # the batch already handed over is still written (and acked)
            await committer
        closing.set()
        await connection
        for writer in writers:
            await writer.close()
        log.info("ingest worker stopped")


@dataclass
class _Writing:
    """Batches being written: with none, a batch is flushed sooner (lower latency)."""

    busy: int = 0


async def _batch_loop(
    source: MqttSource, assembler: Assembler, handoff: asyncio.Queue[PreparedBatch | None],
    settings: Settings, writing: _Writing,
) -> None:
    """Gather while input keeps coming; flush at the size bound, the time bound or a pause.

    While the writer is busy the batch may grow for up to COLDCHAIN_INGEST_BATCH_WAIT_MS (group
    commit under load); an idle writer gets what came within IDLE_LINGER_S.
    """
    loop = asyncio.get_running_loop()
    max_messages = max(settings.ingest_batch_max, 1)
    wait_s = max(settings.ingest_batch_wait_ms, 0) / 1000
    # The broker stops sending at its in-flight cap until we ack: a short pause means "flush now".
    pause_s = min(0.002, wait_s)
    inbox = source.inbox
    while True:
        await inbox.wait()
        idle = writing.busy == 0 and handoff.empty()
        deadline = loop.time() + (min(wait_s, IDLE_LINGER_S) if idle else wait_s)
        while len(inbox) < max_messages:
            before, left = len(inbox), deadline - loop.time()
            if left <= 0:
                break
            await asyncio.sleep(min(pause_s, left))
            if len(inbox) == before:
                break
        deliveries = inbox.take(max_messages, MAX_BATCH_BYTES)
        if deliveries:
            await handoff.put(assembler.assemble(deliveries))


async def _write_loop(
    writers: list[Writer], source: MqttSource, assembler: Assembler,
    handoff: asyncio.Queue[PreparedBatch | None], stop: asyncio.Event, on_commit: CommitHook | None,
    writing: _Writing,
) -> None:
    """Write batches on several connections at once; acknowledge them strictly in order."""
    free: asyncio.Queue[Writer] = asyncio.Queue()
    for writer in writers:
        free.put_nowait(writer)
    inflight: asyncio.Queue[tuple[PreparedBatch, asyncio.Task[BatchResult | None]] | None] = (
        asyncio.Queue())

    async def write_on(writer: Writer, batch: PreparedBatch) -> BatchResult | None:
        try:
            return await _write_durably(writer, assembler, batch, stop)
        finally:
            free.put_nowait(writer)

    async def acknowledge() -> None:
        summary, acking = Summary(time.monotonic()), True
        while (item := await inflight.get()) is not None:
            batch, task = item
            result = await task
            writing.busy -= 1
            # Once a batch is left unwritten (stopping while the database is away), nothing after
            # it is acknowledged either: MQTT acks go in arrival order; the broker redelivers.
            acking = acking and result is not None
            if acking:
                source.ack(batch.deliveries)
            source.inbox.release(batch.deliveries)
            if not acking or result is None:
                continue
            _record(result, batch)
            summary.add(result, len(source.inbox))
            if on_commit is not None:
                on_commit(result, batch)

    acker = asyncio.create_task(acknowledge(), name="ingest-ack")
    try:
        while (batch := await handoff.get()) is not None:
            writer = await free.get()
            writing.busy += 1
            inflight.put_nowait((batch, asyncio.create_task(write_on(writer, batch))))
    finally:
        inflight.put_nowait(None)
        await acker


class Summary:
    """One log line a minute: what this worker did (operators, and proof that a worker works)."""

    EVERY_S = 60.0

    def __init__(self, now: float) -> None:
        self._reset(now)

    def _reset(self, now: float) -> None:
        self.since = now
        self.total = BatchResult(messages=0, readings=0)
        self.batches = 0

    def add(self, result: BatchResult, queued: int) -> None:
        total = self.total
        total.messages += result.messages
        total.stored += result.stored
        total.duplicates += result.duplicates
        total.conflicts += result.conflicts
        total.rejected.update(result.rejected)
        self.batches += 1
        now = time.monotonic()
        if now - self.since >= self.EVERY_S:
            log.info("last %.0fs: %d messages in %d batches, %d readings stored, %d duplicates, "
                     "%d conflicts, %d quarantined; %d queued", now - self.since, total.messages,
                     self.batches, total.stored, total.duplicates, total.conflicts,
                     sum(total.rejected.values()), queued)
            self._reset(now)


async def _write_durably(
    writer: Writer, assembler: Assembler, batch: PreparedBatch, stop: asyncio.Event,
    *, isolate: bool = True,
) -> BatchResult | None:
    """Write until committed: retry what the database causes, isolate what the data causes."""
    delay = 0.1
    while True:
        started = time.perf_counter()
        try:
            result = await writer.write(batch)
        except _DATA_ERRORS as exc:
            metrics.RETRIES.labels("data").inc()
            if isolate and len(batch.deliveries) > 1:
                log.warning("batch of %d messages failed (%s); writing them one by one",
                            len(batch.deliveries), exc)
                return await _write_isolated(writer, assembler, batch, stop)
            if batch.rows or batch.statuses or not batch.rejections:
                log.error("message on %r cannot be stored (%s); quarantined",
                          batch.deliveries[0].topic, exc)
                return await _write_durably(writer, assembler, _storage_error(batch, exc), stop,
                                            isolate=False)
            if any(r.payload is not None for r in batch.rejections):
                log.error("quarantine row refused (%s); keeping it without payload", exc)
                batch.rejections = [r._replace(detail="unstorable input", payload=None)
                                    for r in batch.rejections]
                continue
            raise
        except Exception as exc:  # never drop or crash: nothing is acked, retry
            cause = ("conflict" if isinstance(exc, asyncpg.TransactionRollbackError)
                     else "connection" if isinstance(exc, _CONNECTION_ERRORS)
                     else "error" if isinstance(exc, asyncpg.PostgresError) else "unexpected")
            metrics.RETRIES.labels(cause).inc()
            if cause != "conflict":
                writer.discard()
            if cause == "unexpected":
                log.exception("batch write failed unexpectedly; retrying in %.1fs", delay)
            else:
                log.warning("batch write failed (%s: %s); retrying in %.1fs", type(exc).__name__,
                            exc, delay)
            if stop.is_set() and cause != "conflict":
                return None
            await wait_any(stop, within=delay)
            delay = min(delay * 2, 2.0)
            continue
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
        return result


async def _write_isolated(
    writer: Writer, assembler: Assembler, batch: PreparedBatch, stop: asyncio.Event
) -> BatchResult | None:
    total = BatchResult(messages=len(batch.deliveries), readings=0)
    for delivery in batch.deliveries:
        one = await _write_durably(writer, assembler, assembler.assemble([delivery]), stop,
                                   isolate=False)
        if one is None:
            return None
        total.readings += one.readings
        total.stored += one.stored
        total.duplicates += one.duplicates
        total.conflicts += one.conflicts
        total.rejected.update(one.rejected)
        total.shipments.update(one.shipments)
    return total


def _storage_error(batch: PreparedBatch, exc: BaseException) -> PreparedBatch:
    """The one message the database refused, as a quarantine row instead of readings."""
    quarantined = PreparedBatch(batch.deliveries)
    reason = Rejected(STORAGE_ERROR, f"{type(exc).__name__}: {exc}"[:500])
    for src in batch.sources:
        quarantined.rejections.append(
            rejection_row(src.topic, src.logger_id, src.payload, src.sha256, src.received_at, reason)
        )
    if not batch.sources:
        quarantined.rejections = batch.rejections
    return quarantined


def _record(result: BatchResult, batch: PreparedBatch) -> None:
    status = sum(1 for s in batch.sources if s.kind == "status")
    metrics.MESSAGES.labels("status").inc(status)
    metrics.MESSAGES.labels("telemetry").inc(len(batch.sources) - status)
    metrics.MESSAGES.labels("other").inc(len(batch.deliveries) - len(batch.sources))
    metrics.READINGS_RECEIVED.inc(result.readings)
    metrics.READINGS_STORED.inc(result.stored)
    metrics.DUPLICATES.inc(result.duplicates)
    metrics.CONFLICTS.inc(result.conflicts)
    for reason, count in result.rejected.items():
        metrics.REJECTED.labels(reason).inc(count)
    metrics.BATCH_READINGS.observe(result.readings)
    metrics.BATCH_MESSAGES.observe(result.messages)
    rows = batch.rows
    if rows and result.stored:
        now = time.time()
        for row in rows[:: max(len(rows) // LAG_SAMPLES, 1)]:
            metrics.LAG_SECONDS.observe(max(now - row.ts.timestamp(), 0.0))
