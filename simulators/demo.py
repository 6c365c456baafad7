"""`coldchain demo`: seed a dozen shipments at different points of their journeys, keep them live."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import make_engine, make_sessionmaker
from app.core.models import User, utcnow
from app.core.security import Principal
from app.core.settings import Settings
from app.schemas.people import UserIn, UserPatch
from app.schemas.reference import ApiKeyIn
from app.services import people, reference
from simulators import history, provision
from simulators.plan import Message, Plan, build, messages
from simulators.publisher import Publisher, PublishError, status_topic, telemetry_topic
from simulators.runner import backfill, distinct_sent, pause, publish_all, wait_ingested
from simulators.scenario import Scenario, get

log = logging.getLogger(__name__)
DEMO = Principal(actor="demo", role="admin")
DEMO_INTERVAL_S = 60  # livelier than the scenario files: something moves every minute
# Lanes (by scenario) seeded with delivered history: 30 ≥ the 10 a lane_history forecast needs.
HISTORY_LANES = ("clean-2-8", "customs-hold-at-risk")
HISTORY_N = 30
HISTORY_SEED = 17


@dataclass(frozen=True, slots=True)
class DemoShipment:
    number: int
    scenario: str
    now_h: float | None  # where 'now' is on the scenario's timeline at seeding; None: its end

    @property
    def reference(self) -> str:
        return f"DEMO-{self.number:02d}"

    @property
    def tag(self) -> str:
        return f"demo{self.number:02d}"


FLEET = (
    DemoShipment(1, "clean-2-8", 1.0),  # packed, departs within the hour
    DemoShipment(2, "clean-2-8", 4.0),  # in transit, waiting at AMS
    DemoShipment(3, "clean-2-8", None),  # received: ready for QP release
    DemoShipment(4, "ln2-10-day", 11.0),  # at EWR; its flight (no coverage) starts soon
    DemoShipment(5, "ln2-10-day", 60.0),  # resting in the cryo depot
    DemoShipment(6, "customs-hold-at-risk", 70.0),  # held in customs, hold time at risk
    DemoShipment(7, "tarmac-excursion", 13.0),  # on a hot apron, excursion under way
    DemoShipment(8, "tarmac-excursion", None),  # received with an excursion on record
    DemoShipment(9, "lid-opened", 10.0),  # past customs, lid opened there
    DemoShipment(10, "route-deviation", 4.6),  # off its corridor right now
    DemoShipment(11, "rough-handling", 8.0),  # dropped at the depot
    DemoShipment(12, "duplicate-storm", 5.6),  # delivered, not yet received
    DemoShipment(13, "dead-battery", 2.5),  # battery nearly flat; will fall silent
)


def scenario_for(entry: DemoShipment) -> Scenario:
    sc = get(entry.scenario)
    loggers = tuple(replace(lg, interval_s=min(lg.interval_s, DEMO_INTERVAL_S))
                    for lg in sc.loggers)
    return replace(sc, loggers=loggers)


def _now_s(entry: DemoShipment, sc: Scenario) -> float:
    return sc.duration_s if entry.now_h is None else entry.now_h * 3600.0


async def role_keys(settings: Settings) -> dict[str, str]:
    """A fresh coordinator key for this demo run, for scripts (acknowledging and resolving are
    decisions the admin key may not make; releasing is a QP person's signature, no key's)."""
    engine = make_engine(settings.database_url or "", pool_size=1)
    keys = {}
    try:
        async with make_sessionmaker(engine)() as session:
            for role in ("coordinator",):
                _, keys[role] = await reference.create_api_key(
                    session, DEMO, ApiKeyIn(role=role, name=f"demo {role}"))
            await session.commit()
    finally:
        await engine.dispose()
    return keys


# The people who sign in to the demo's page: (role, email, name).
DEMO_PEOPLE = (("coordinator", "coordinator@demo.example", "Demo Coordinator"),
               ("qp", "qp@demo.example", "Demo Qualified Person"))


async def role_people(settings: Settings) -> dict[str, tuple[str, str]]:
    """Role → (email, password) of the demo's people, each with a fresh random password (a new
    run on the same data resets it and re-enables the account): the QP signs release decisions."""
    engine = make_engine(settings.database_url or "", pool_size=1)
    out = {}
    try:
        async with make_sessionmaker(engine)() as session:
            for role, email, name in DEMO_PEOPLE:
                password = secrets.token_urlsafe(15)
                user = await session.scalar(select(User).where(User.email == email))
                if user is None:
                    await people.create_user(session, DEMO, UserIn(
                        email=email, name=name, role=role, password=password))
                else:
                    await people.update_user(session, DEMO, user.id, UserPatch(
                        password=password, disabled=False))
                out[role] = (email, password)
            await session.commit()
    finally:
        await engine.dispose()
    return out


async def seed(settings: Settings, sessions: async_sessionmaker[AsyncSession] | None = None
               ) -> None:
    """Sites, products, packaging, lanes and the demo loggers (idempotent).

    The shipments themselves are created by `run_fleet` once ingest listens: each with its
    history of readings already stored and its past events in one transaction — a shipment
    registered before its history would be judged as packed days ago and never departed, or as
    silent since departure.
    """
    engine = None
    if sessions is None:
        engine = make_engine(settings.database_url or "", pool_size=1)
        sessions = make_sessionmaker(engine)
    try:
        for entry in FLEET:
            async with sessions() as session:
                await provision.provision_references(session, scenario_for(entry), tag=entry.tag)
                await session.commit()
    finally:
        if engine is not None:
            await engine.dispose()


async def seed_history(
    settings: Settings, sessions: async_sessionmaker[AsyncSession] | None = None
) -> int:
    """Delivered history on some demo lanes (idempotent), so their shipments' forecasts come
    from it (`lane_history`); returns how many shipments were added."""
    engine = None
    if sessions is None:
        engine = make_engine(settings.database_url or "", pool_size=1)
        sessions = make_sessionmaker(engine)
    added = 0
    try:
        for name in HISTORY_LANES:
            entry = next(e for e in FLEET if e.scenario == name)
            async with sessions() as session:
                refs = await provision.provision_references(session, scenario_for(entry),
                                                            tag=entry.tag)
                made = await history.generate(
                    session, str(refs.lane_id), HISTORY_N, seed=HISTORY_SEED, now=utcnow(),
                    profiles=(refs.product_id, refs.packaging_id))
                await session.commit()
            added += len(made)
    finally:
        if engine is not None:
            await engine.dispose()
    return added


@dataclass
class _Live:
    entry: DemoShipment
    plan: Plan
    shipment_id: uuid.UUID
    t0: datetime
    msgs: list[Message]
    sent_until: float
    applied: int

    def offset(self, at: datetime) -> float:
        return (at - self.t0).total_seconds()


async def _start(entry: DemoShipment, pub: Publisher, prefix: str,
                 sessions: async_sessionmaker[AsyncSession], now: datetime,
                 stop: asyncio.Event) -> _Live:
    """Resume a demo shipment from the database, or back-fill and create it."""
    sc = scenario_for(entry)
    plan = build(sc)
    async with sessions() as session:
        shipment = await provision.find_shipment(session, entry.reference)
        applied = 0 if shipment is None else await provision.applied_events(session, shipment.id)
        refs = await provision.provision_references(session, sc, tag=entry.tag)
        await session.commit()
    if shipment is not None:
        t0 = shipment.packed_at
        item = _Live(entry, plan, shipment.id, t0, messages(plan, t0, entry.tag), -1.0, applied)
        await _step(item, now, pub, prefix, sessions, events=False)  # dedup makes it idempotent
        await wait_ingested(sessions, refs.logger_ids, distinct_sent(
            plan, entry.tag, item.sent_until), 30.0, stop)
        return item
    t0 = now - timedelta(seconds=_now_s(entry, sc))
    msgs = messages(plan, t0, entry.tag)
    now_s = _now_s(entry, sc)
    prov = await backfill(pub, prefix, sessions, sc, plan, msgs, refs, tag=entry.tag,
                          reference=entry.reference, t0=t0, now_s=now_s, timeout_s=30.0,
                          stop=stop)
    done = sum(1 for e in plan.events if e.offset_s <= now_s)
    return _Live(entry, plan, prov.shipment_id, t0, msgs, now_s, done)


async def _wait_for_ingest(pub: Publisher, prefix: str, sessions: async_sessionmaker[AsyncSession],
                           stop: asyncio.Event, timeout_s: float = 60.0) -> None:
    """Re-publish one real reading until it is stored (duplicates are harmless): ingest is up."""
    entry = FLEET[0]
    first = messages(build(scenario_for(entry)), datetime.now(UTC) - timedelta(
        seconds=_now_s(entry, scenario_for(entry))), entry.tag)[0]
    async with sessions() as session:
        found = await provision.find_shipment(session, entry.reference)
    if found is not None:
        first = messages(build(scenario_for(entry)), found.packed_at, entry.tag)[0]
    deadline = time.monotonic() + timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        await asyncio.to_thread(pub.publish, telemetry_topic(prefix, first.logger_id),
                                first.payload)
        async with sessions() as session:
            if await provision.stored_readings(session, (first.logger_id,)) > 0:
                return
        await pause(stop, 0.5)
    if not stop.is_set():
        log.warning("demo: no reading stored after %.0f s; publishing anyway", timeout_s)


async def _step(item: _Live, now: datetime, pub: Publisher, prefix: str,
                sessions: async_sessionmaker[AsyncSession], *, events: bool) -> None:
    off = item.offset(now)
    due = [m for m in item.msgs if item.sent_until < m.send_s <= off]
    if due:
        await asyncio.to_thread(publish_all, pub, prefix, due)
    item.sent_until = off
    if not events:
        return
    for ev in item.plan.events[item.applied:]:
        if ev.offset_s > off:
            break
        async with sessions() as session:
            at = item.t0 + timedelta(seconds=ev.offset_s)
            await provision.apply_event(session, item.shipment_id, ev.type, at)
            await session.commit()
        item.applied += 1


async def run_fleet(settings: Settings, stop: asyncio.Event) -> None:
    """Bring every demo shipment up to the present, then keep its loggers publishing live."""
    engine = make_engine(settings.database_url or "", pool_size=2)
    sessions = make_sessionmaker(engine)
    prefix = settings.topic_prefix
    pub = Publisher(settings.mqtt_url or "")
    try:
        await asyncio.to_thread(pub.connect)
        await _wait_for_ingest(pub, prefix, sessions, stop)
        fleet: list[_Live] = []
        for entry in FLEET:
            if stop.is_set():
                return
            fleet.append(await _start(entry, pub, prefix, sessions, datetime.now(UTC), stop))
            for lid in sorted({m.logger_id for m in fleet[-1].msgs}):
                await asyncio.to_thread(pub.publish, status_topic(prefix, lid), "online",
                                        retain=True)
        log.info("demo: %d shipments up to date; publishing live", len(fleet))
        while not stop.is_set():
            now = datetime.now(UTC)
            for item in fleet:
                await _step(item, now, pub, prefix, sessions, events=True)
            await pause(stop, 1.0)
    except PublishError as exc:
        log.error("demo fleet stopped: %s", exc)
        raise
    finally:
        await asyncio.to_thread(pub.close)
        await engine.dispose()
