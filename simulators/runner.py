"""Play a scenario against the configured database and broker: real time, accelerated or back-filled."""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import make_engine, make_sessionmaker
from app.core.settings import Settings
from app.core.waiting import wait_any
from simulators import provision
from simulators.clock import TimeMap
from simulators.plan import Message, Plan, PlannedEvent, build, logger_id, messages
from simulators.publisher import Publisher, status_topic, telemetry_topic
from simulators.scenario import Scenario

log = logging.getLogger(__name__)
Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True, slots=True)
class RunResult:
    scenario: str
    shipment_id: uuid.UUID
    reference: str
    logger_ids: tuple[str, ...]
    messages: int
    readings: int  # distinct readings sent
    expected: frozenset[str]


def distinct_sent(plan: Plan, tag: str, until_s: float = math.inf) -> int:
    """How many distinct (logger, reading) left the loggers in transmissions up to `until_s`."""
    seen = {(logger_id(lp.spec, tag), r.offset_s) for lp in plan.loggers
            for tx in lp.transmissions if tx.send_s <= until_s for r in tx.readings}
    return len(seen)


def publish_all(pub: Publisher, prefix: str, batch: Sequence[Message]) -> None:
    for m in batch:
        pub.publish(telemetry_topic(prefix, m.logger_id), m.payload)


async def wait_ingested(sessions: Sessions, logger_ids: tuple[str, ...], expected: int,
                        timeout_s: float, stop: asyncio.Event | None = None) -> int:
    """Poll until the loggers' stored readings reach `expected` (or time out, or `stop`)."""
    deadline = time.monotonic() + timeout_s
    while True:
        async with sessions() as session:
            stored = await provision.stored_readings(session, logger_ids)
        if stop is not None and stop.is_set():
            return stored
        if stored >= expected or time.monotonic() >= deadline:
            if stored < expected:
                log.warning("only %d of %d readings stored after %.0f s: is ingest running?",
                            stored, expected, timeout_s)
            return stored
        await asyncio.sleep(0.25)


async def pause(stop: asyncio.Event | None, seconds: float) -> bool:
    """Sleep `seconds` or until `stop` is set; True when stopped."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    return await wait_any(stop, within=seconds)


async def _apply(sessions: Sessions, shipment_id: uuid.UUID, ev: PlannedEvent,
                 tm: TimeMap) -> None:
    async with sessions() as session:
        await provision.apply_event(session, shipment_id, ev.type, tm.device(ev.offset_s))
        await session.commit()


async def _play(actions: list[tuple[float, object]], pub: Publisher, prefix: str,
                sessions: Sessions, shipment_id: uuid.UUID, tm: TimeMap,
                due: Callable[[float], float], stop: asyncio.Event | None) -> None:
    """Publish messages and apply events when their wall time (`due(offset)`, monotonic) comes."""
    i = 0
    while i < len(actions):
        if stop is not None and stop.is_set():
            return
        offset, what = actions[i]
        wait = due(offset) - time.monotonic()
        if wait > 0:
            if await pause(stop, wait):
                return
            continue
        if isinstance(what, PlannedEvent):
            await _apply(sessions, shipment_id, what, tm)
            i += 1
            continue
        batch: list[Message] = []
        now = time.monotonic()
        while i < len(actions) and isinstance(actions[i][1], Message) and due(
                actions[i][0]) <= now:
            batch.append(actions[i][1])  # type: ignore[arg-type]
            i += 1
        await asyncio.to_thread(publish_all, pub, prefix, batch)


_SETUP = asyncio.Lock()  # concurrent runs in one process set up one at a time
T = TypeVar("T")


async def _transaction(sessions: Sessions, what: str,
                       work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """One committed transaction, retried if PostgreSQL picks it as a deadlock victim (the audit
    chain's lock is taken mid-transaction, so set-ups racing other writers can cross locks)."""
    async with _SETUP:
        for attempt in range(3):
            try:
                async with sessions() as session:
                    result = await work(session)
                    await session.commit()
                    return result
            except DBAPIError as exc:
                if "deadlock" not in str(exc) or attempt == 2:
                    raise
                log.warning("%s hit a deadlock; retrying", what)
    raise AssertionError("unreachable")


async def backfill(pub: Publisher, prefix: str, sessions: Sessions, sc: Scenario, plan: Plan,
                   msgs: Sequence[Message], refs: provision.References, *, tag: str,
                   reference: str, t0: datetime, now_s: float, timeout_s: float,
                   stop: asyncio.Event | None = None) -> provision.Provisioned:
    """Publish the history up to `now_s`, wait until ingest has stored it, then create the
    shipment together with the events already behind it (one transaction)."""
    history = [m for m in msgs if m.send_s <= now_s]
    await asyncio.to_thread(publish_all, pub, prefix, history)
    await asyncio.to_thread(pub.flush)
    await wait_ingested(sessions, refs.logger_ids, distinct_sent(plan, tag, now_s), timeout_s,
                        stop)
    past = [(e.type, t0 + timedelta(seconds=e.offset_s)) for e in plan.events
            if e.offset_s <= now_s]
    return await _transaction(sessions, f"set-up of {reference}", lambda s: (
        provision.create_shipment(s, sc, refs, reference=reference, packed_at=t0, events=past)))


async def run(settings: Settings, sc: Scenario, *, speed: float | None = None,
              tag: str | None = None, sessions: Sessions | None = None,
              stop: asyncio.Event | None = None, ingest_timeout_s: float = 60.0) -> RunResult:
    """Set the scenario's shipment up and play its loggers and events.

    `speed` None back-fills: the history up to the scenario's anchor is published at once with
    device times in the past; once ingest has stored it the shipment is created with its past
    events, then any live tail plays in real time. Otherwise the shipment is created packed and
    the timeline plays at `speed` (1 = real time), ending at the present; events are applied
    when the timeline reaches them.
    """
    tag = tag or secrets.token_hex(3)
    engine = None
    if sessions is None:
        engine = make_engine(settings.database_url or "", pool_size=2)
        sessions = make_sessionmaker(engine)
    plan = build(sc)
    wall_start = datetime.now(UTC)
    tm = TimeMap.backfill(wall_start, sc.anchor_s) if speed is None else TimeMap(
        wall_start, sc.anchor_s, speed)
    reference = provision.default_reference(sc, tag)
    refs = await _transaction(sessions, f"set-up of {reference}", lambda s: (
        provision.provision_references(s, sc, tag=tag)))
    msgs = messages(plan, tm.t0, tag)
    prefix = settings.topic_prefix
    pub = Publisher(settings.mqtt_url or "")
    await asyncio.to_thread(pub.connect)
    try:
        for lid in refs.logger_ids:
            pub.publish(status_topic(prefix, lid), "online", retain=True)
        actions: list[tuple[float, object]] = sorted(
            [(m.send_s, m) for m in msgs] + [(e.offset_s, e) for e in plan.events],
            key=lambda a: (a[0], isinstance(a[1], Message)))  # an event before a same-time send
        if speed is None:
            prov = await backfill(pub, prefix, sessions, sc, plan, msgs, refs, tag=tag,
                                  reference=reference, t0=tm.t0, now_s=sc.anchor_s,
                                  timeout_s=ingest_timeout_s, stop=stop)
            live0 = time.monotonic()
            tail = [a for a in actions if a[0] > sc.anchor_s]
            await _play(tail, pub, prefix, sessions, prov.shipment_id, tm,
                        lambda off: live0 + off - sc.anchor_s, stop)
        else:
            prov = await _transaction(sessions, f"set-up of {reference}", lambda s: (
                provision.create_shipment(s, sc, refs, reference=reference,
                                          packed_at=tm.device(0))))
            mono0 = time.monotonic()
            await _play(actions, pub, prefix, sessions, prov.shipment_id, tm,
                        lambda off: mono0 + tm.wall_s(off), stop)
        for lid in refs.logger_ids:
            pub.publish(status_topic(prefix, lid), "offline", retain=True)
        await asyncio.to_thread(pub.flush)
    finally:
        await asyncio.to_thread(pub.close)
        if engine is not None:
            await engine.dispose()
    return RunResult(sc.name, prov.shipment_id, prov.reference, prov.logger_ids, len(msgs),
                     distinct_sent(plan, tag), sc.alerts)
