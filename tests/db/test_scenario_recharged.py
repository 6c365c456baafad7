"""The library's `customs-hold-recharged` scenario judged live by the real engine: its logger's
transmissions are stored as they would arrive (received when sent), its custody events and the
coordinator's recharge are recorded when the timeline reaches them, and the engine runs every
30 min on the scenario's own clock. The alert transitions must be exactly those the scenario
file lists (and the back-filled run in tests/e2e/test_scenarios.py raises its `alerts`)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.db import make_sessionmaker
from app.core.handoff import enqueue_evaluation
from app.core.models import Alert, Reading, Shipment
from simulators import provision
from simulators.payloads import device_time
from simulators.plan import build
from simulators.scenario import Transition, library
from tests.db.engine_support import Clock, round_
from tests.factories import T0

SCENARIO = "customs-hold-recharged"
STEP_S = 1800


def _rows(plan: Any, logger_id: str, shipment_id: uuid.UUID) -> list[tuple[float, dict[str, Any]]]:
    """(send offset, reading row) for every reading the logger sent, first sending only."""
    (lp,) = plan.loggers
    first: dict[float, tuple[float, Any]] = {}
    for tx in lp.transmissions:
        for r in tx.readings:
            first.setdefault(r.offset_s, (tx.send_s, r))
    return [(send_s, {
        "logger_id": logger_id, "ts": device_time(T0, r, lp.spec.skew_s),
        "shipment_id": shipment_id, "temp_c": r.temp_c, "lat": r.lat, "lon": r.lon,
        "battery_pct": r.battery_pct, "seq": r.seq,
        "received_at": T0 + timedelta(seconds=send_s)}) for send_s, r in first.values()]


async def test_the_recharge_clears_the_risk_it_was_raised_for(
    engine: AsyncEngine, db: AsyncSession
) -> None:
    sc = library()[SCENARIO]
    plan = build(sc)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        prov = await provision.provision(session, sc, tag="t", packed_at=T0)
        await session.commit()
    rows = _rows(plan, prov.logger_ids[0], prov.shipment_id)
    events = list(plan.events)
    seen: dict[uuid.UUID, tuple[str, str]] = {}
    transitions: list[Transition] = []
    offset = 0.0
    while offset <= sc.duration_s:
        due = [row for send_s, row in rows if send_s <= offset]
        rows = [(s, row) for s, row in rows if s > offset]
        if due:
            async with sessions() as session, session.begin():
                await session.execute(insert(Reading).on_conflict_do_nothing(), due)
                await enqueue_evaluation(session, prov.shipment_id, min(r["ts"] for r in due))
        while events and events[0].offset_s <= offset:
            ev = events.pop(0)
            async with sessions() as session:
                await provision.apply_event(session, prov.shipment_id, ev.type,
                                            T0 + timedelta(seconds=ev.offset_s))
                await session.commit()
        await round_(engine, Clock(T0 + timedelta(seconds=offset)))
        db.expire_all()
        for alert in (await db.scalars(select(Alert).where(
                Alert.shipment_id == prov.shipment_id).order_by(Alert.opened_at))).all():
            now = (alert.state, alert.severity)
            if seen.get(alert.id) != now:
                seen[alert.id] = now
                transitions.append(Transition(offset, alert.kind, *now))
        offset += STEP_S
    assert transitions == list(sc.transitions)
    assert [(t.at_s / 3600, t.kind, t.state) for t in transitions] == [
        (27.5, "dwell_exceeded", "open"), (60.5, "hold_time_at_risk", "open"),
        (62.0, "hold_time_at_risk", "resolved"), (67.5, "dwell_exceeded", "resolved")]
    assert {t.kind for t in transitions} >= set(sc.alerts)
    shipment = await db.get(Shipment, prov.shipment_id)
    assert shipment is not None
    assert (shipment.status, shipment.recharged_at) == ("received", T0 + timedelta(hours=62))
    risk = await db.scalar(select(Alert).where(Alert.shipment_id == prov.shipment_id,
                                                Alert.kind == "hold_time_at_risk"))
    assert risk is not None and risk.resolution is not None
    assert risk.resolution.startswith("hold-time margin recovered")


def test_the_scenario_is_in_the_library_with_its_recharge() -> None:
    sc = library()[SCENARIO]
    assert [(c.type, c.at_s) for c in sc.contingencies] == [("recharged", 62 * 3600.0)]
    plan = build(sc)
    assert [(e.type, e.offset_s / 3600) for e in plan.events] == [
        ("departed", 3.0), ("customs_hold", 15.0), ("recharged", 62.0),
        ("customs_released", 67.0), ("delivered", 68.5), ("received", 69.5)]
    # The simulated coolant is full again at the recharge; the payload never left its range.
    assert plan.trace.charge_at(62 * 3600 - 60) < 0.5 < plan.trace.charge_at(62 * 3600 + 60)
    assert all(-90.0 <= t <= -60.0 for t in plan.trace.temps)
