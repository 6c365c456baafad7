"""Time-driven conditions on an injected clock, and several workers at once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alerts import worker
from alerts.engine import ensure_state_rows, evaluate_shipments
from alerts.rules import EvalConfig
from app.core.db import make_sessionmaker
from app.core.models import Alert, AlertEvent
from tests.db.engine_support import Clock, alerts_of, at, event, round_, state_of, store, sweep
from tests.factories import T0, shipment_setup


def hours(h: float) -> timedelta:
    return timedelta(hours=h)


async def _kinds(db: AsyncSession, sid: str) -> dict[str, Alert]:
    return {a.kind: a for a in await alerts_of(db, sid) if a.state != "resolved"}


async def test_signal_lost_exactly_when_the_max_gap_has_passed_and_back_with_data(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    sid = str((await shipment_setup(client, departed_at=T0.isoformat()))["id"])
    await store(engine, sid, "LOG-1", [(0, 5.0), (5, 5.0)])
    clock = Clock(at(6))
    await round_(engine, clock)
    state = await state_of(db, sid)
    assert state.next_check_at is not None and state.next_check_at <= at(20) + timedelta(seconds=1)
    clock.set(at(20))  # exactly the max gap (3 × 300 s) after the last reading: not yet
    assert (await sweep(engine, clock)).evaluated == [uuid.UUID(sid)]
    assert "signal_lost" not in await _kinds(db, sid)
    clock.set(at(20) + timedelta(seconds=1))
    await sweep(engine, clock)
    lost = (await _kinds(db, sid))["signal_lost"]
    assert lost.condition_since == at(20) and lost.details["loggers"] == ["LOG-1"]
    clock.set(at(31))
    await store(engine, sid, "LOG-1", [(30, 5.0)])
    await round_(engine, clock)
    (alert,) = [a for a in await alerts_of(db, sid) if a.kind == "signal_lost"]
    assert alert.state == "resolved" and alert.resolution == "data is flowing again"


async def test_sweep_looks_only_at_due_shipments(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    sid = str((await shipment_setup(client, departed_at=T0.isoformat()))["id"])
    await store(engine, sid, "LOG-1", [(0, 5.0)])
    await round_(engine, Clock(at(1)))
    assert (await sweep(engine, Clock(at(2)))).evaluated == []


async def test_unacknowledged_critical_alert_escalates_once(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    sid = str((await shipment_setup(client, departed_at=T0.isoformat(),
                                    product={"critical_max_c": 15.0}))["id"])
    clock = Clock(at(1))
    await store(engine, sid, "LOG-1", [(0, 16.0)])
    await round_(engine, clock)
    critical = (await _kinds(db, sid))["temperature_critical"]
    assert (critical.severity, critical.state) == ("critical", "open")
    config = EvalConfig(escalation_after_s=900)
    for minute in (10, 15.9):  # feed readings so signal_lost stays out of the picture
        clock.set(at(minute))
        await store(engine, sid, "LOG-1", [(minute - 0.5, 16.0)])
        await round_(engine, clock, config=config)
    assert (await _kinds(db, sid))["temperature_critical"].state == "open"
    clock.set(at(16))
    await round_(engine, clock, config=config)
    clock.set(at(17))
    await round_(engine, clock, config=config)
    escalated = (await _kinds(db, sid))["temperature_critical"]
    assert escalated.state == "escalated" and escalated.escalated_at == at(16)
    types = (await db.scalars(select(AlertEvent.type).where(AlertEvent.alert_id == escalated.id)
                              .order_by(AlertEvent.id))).all()
    assert list(types) == ["opened", "escalated"]


async def test_hold_time_at_risk_then_exceeded_before_delivery(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    # 30 h expected transit against a 50 h hold from packing: margin 20 h < 24 h safety.
    sid = str((await shipment_setup(client, departed_at=T0.isoformat(), hold_h=50))["id"])
    clock = Clock(T0 + hours(1))
    await store(engine, sid, "LOG-1", [(55, 5.0)])
    await round_(engine, clock)
    risk = (await _kinds(db, sid))["hold_time_at_risk"]
    assert risk.details["margin_h"] == 20.0 and risk.condition_since == T0 + hours(1)
    assert (await state_of(db, sid)).at_risk is True
    clock.set(T0 + hours(50))  # deadline reached, still not delivered
    await round_(engine, clock)
    alerts = await _kinds(db, sid)
    assert alerts["hold_time_exceeded"].severity == "critical"
    assert alerts["hold_time_exceeded"].condition_since == T0 + hours(50)
    assert "hold_time_at_risk" not in alerts  # superseded: the deadline has passed


async def test_customs_dwell_overrun_pushes_arrival_and_alerts(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    sid = str((await shipment_setup(client, departed_at=T0.isoformat()))["id"])
    clock = Clock(T0 + hours(19))
    await event(client, sid, "customs_hold", 10 * 60)
    await store(engine, sid, "LOG-1", [(19 * 60 - 1, 5.0)])
    await round_(engine, clock)
    dwell = (await _kinds(db, sid))["dwell_exceeded"]
    assert dwell.condition_since == T0 + hours(18)  # "BOS customs" allows 8 h
    assert dwell.details["waypoint"] == "BOS customs" and dwell.retroactive is False
    assert (await state_of(db, sid)).expected_arrival == T0 + hours(31)  # 1 h over so far
    clock.set(T0 + hours(31))
    await event(client, sid, "customs_released", 30 * 60)
    await store(engine, sid, "LOG-1", [(31 * 60 - 1, 5.0)])
    await round_(engine, clock)
    state = await state_of(db, sid)
    assert state.expected_arrival == T0 + hours(42)  # 20 h hold − 8 h allowance = +12 h
    assert state.margin_h == 54.0
    (done,) = [a for a in await alerts_of(db, sid) if a.kind == "dwell_exceeded"]
    assert done.state == "resolved" and done.details["duration_s"] == 12 * 3600


async def test_two_workers_at_once_raise_no_double_alerts(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    ids = []
    for i in range(6):
        shipment = await shipment_setup(client, departed_at=T0.isoformat(), reference=f"SHP-{i}",
                                        logger_ids=(f"LOG-{i}",))
        ids.append(uuid.UUID(shipment["id"]))
        await store(engine, shipment["id"], f"LOG-{i}", [(0, 5.0), (5, 9.0), (10, 9.5)])
    maker = make_sessionmaker(engine)
    async with maker() as session, session.begin():
        await ensure_state_rows(session, ids)  # shipments the engine has seen before
        await worker.claim(session, now=at(11))

    holding, tried = asyncio.Event(), asyncio.Event()

    async def first_worker() -> list[uuid.UUID]:
        async with maker() as session, session.begin():
            result = await evaluate_shipments(session, ids, now=at(11), config=EvalConfig())
            holding.set()
            await asyncio.wait_for(tried.wait(), 30)  # commit only after the other one tried
            return result.evaluated

    async def second_worker() -> tuple[list[uuid.UUID], list[uuid.UUID]]:
        await asyncio.wait_for(holding.wait(), 30)
        async with maker() as session, session.begin():
            result = await evaluate_shipments(session, ids, now=at(11), config=EvalConfig())
        tried.set()
        return result.evaluated, result.skipped

    first, (second, skipped) = await asyncio.gather(first_worker(), second_worker())
    assert sorted(first) == sorted(ids) and second == [] and sorted(skipped) == sorted(ids)
    for _ in range(2):  # and whoever comes later finds nothing to add
        await round_(engine, Clock(at(11)))
    alerts = (await db.scalars(select(Alert).where(Alert.kind == "temperature_high"))).all()
    assert sorted(a.shipment_id for a in alerts) == sorted(ids)
