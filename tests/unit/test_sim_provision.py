"""Scenario set-up through the service layer (real PostgreSQL) and the idempotent demo seed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.db import make_sessionmaker
from app.core.models import Lane, LaneWaypoint, Logger, Shipment, ShipmentLogger
from simulators import demo, provision
from simulators.plan import build
from simulators.scenario import library

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LIB = library()
FINAL_STATUS = {"customs-hold-at-risk": "customs_hold", "dead-battery": "in_transit",
                "silent-burst": "delivered"}


async def test_provision_and_play_every_event_of_every_scenario(db: AsyncSession) -> None:
    # One test over the library: each clean database costs seconds here (partitioned tables).
    for name, sc in LIB.items():
        prov = await provision.provision(db, sc, tag="t1", packed_at=NOW)
        shipment = await db.get(Shipment, prov.shipment_id)
        assert shipment is not None and shipment.status == "packed"
        assert shipment.reference == f"SIM-{name}-t1"
        assigned = set(await db.scalars(select(ShipmentLogger.logger_id).where(
            ShipmentLogger.shipment_id == prov.shipment_id)))
        assert assigned == set(prov.logger_ids) == {f"{lg.id}-t1" for lg in sc.loggers}
        waypoints = list(await db.scalars(select(LaneWaypoint.name).where(
            LaneWaypoint.lane_id == shipment.lane_id).order_by(LaneWaypoint.position)))
        assert waypoints == [w.name for w in sc.waypoints]
        events = build(sc).events
        for ev in events:
            await provision.apply_event(db, prov.shipment_id, ev.type,
                                        NOW + timedelta(seconds=ev.offset_s))
        await db.refresh(shipment)
        assert shipment.status == FINAL_STATUS.get(name, "received"), name
        assert await provision.applied_events(db, prov.shipment_id) == len(events)


async def test_reference_data_is_reused_between_runs(db: AsyncSession) -> None:
    sc = LIB["clean-2-8"]
    a = await provision.provision(db, sc, tag="a", packed_at=NOW)
    b = await provision.provision(db, sc, tag="b", packed_at=NOW)
    assert a.shipment_id != b.shipment_id
    assert await db.scalar(select(func.count()).select_from(Lane)) == 1


async def test_demo_seed_is_idempotent(db: AsyncSession, engine: AsyncEngine, settings) -> None:
    sessions = make_sessionmaker(engine)
    await demo.seed(settings, sessions)
    await demo.seed(settings, sessions)
    loggers = set(await db.scalars(select(Logger.id)))
    want = {f"{lg.id}-{e.tag}" for e in demo.FLEET for lg in demo.scenario_for(e).loggers}
    assert loggers == want and len(demo.FLEET) >= 12
    assert len({e.scenario for e in demo.FLEET}) >= 9
    # Shipments come with their history, from run_fleet (tests/e2e/test_scenarios.py).
    assert await db.scalar(select(func.count()).select_from(Shipment)) == 0
