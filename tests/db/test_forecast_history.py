"""`coldchain simulate history`: a lane's delivered history in the database, judged by the engine,
and the forecasts that follow from it."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.errors import InvalidField
from app.core.models import AuditRecord, LaneForecastModel, Reading, Shipment, utcnow
from app.core.settings import Settings
from simulators import history
from tests import factories as f
from tests.api.dashboard_world import fleet
from tests.db.engine_support import Clock, round_

API = "/api/v1"


async def test_simulated_history_gives_lane_history_forecasts(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession, settings: Settings
) -> None:
    world = await fleet(client, ["LIVE"], packed_at=utcnow() - timedelta(hours=3))
    lane_id = world["lane_id"]
    created = await history.run(settings, lane_id, 12, seed=5)
    assert len(created) == 12
    assert await history.run(settings, "AMS-BOS", 12, seed=5) == []  # by name; already there
    rows = (await db.execute(select(Shipment.status, Shipment.departed_at, Shipment.delivered_at)
                             .where(Shipment.id.in_(created)))).all()
    assert {r.status for r in rows} == {"received"}
    assert all(r.delivered_at < utcnow() for r in rows)
    readings, fixes = (await db.execute(
        select(func.count(), func.count(Reading.lat)).where(Reading.shipment_id.in_(created)))
    ).one()
    # ≈ 32 h each at 15 min; a position at the waypoints only (the one leg flies: no GPS).
    assert readings > 12 * 4 * 30 and 12 * 5 < fixes < readings / 5
    audited = await db.scalar(select(func.count()).select_from(AuditRecord).where(
        AuditRecord.action == "create", AuditRecord.entity_type == "shipment"))
    assert audited == 13
    await f.post(client, f"/shipments/{world['shipments']['LIVE']['id']}/events",
                 {"type": "departed", "at": (utcnow() - timedelta(hours=2)).isoformat()})
    await round_(engine, Clock(utcnow()))
    model = await db.scalar(select(LaneForecastModel))
    assert model is not None and model.delivered_n == 12
    assert len(model.totals_h) == 12 and len(model.segments_h) >= 11
    assert all(len(r) == 5 for r in model.segments_h)  # 2 waypoints: 2·2 + 1 segments
    live = (await client.get(f"{API}/shipments/{world['shipments']['LIVE']['id']}")).json()
    assert live["forecast_basis"] == {"method": "lane_history", "delivered_n": 12}
    perf = (await client.get(f"{API}/lanes/{lane_id}/performance")).json()
    assert perf["delivered_shipments"] == 12 and perf["transit_h"]["on_time_rate"] == 1.0


async def test_simulated_history_needs_a_lane_it_can_play(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    bare = await f.lane(client, await f.site(client), await f.site(client, "Boston", "US"),
                        name="BARE", waypoints=[])
    with pytest.raises(InvalidField, match="at least two waypoints"):
        await history.run(settings, bare, 3, seed=1)
    with pytest.raises(InvalidField, match="no lane"):
        await history.run(settings, "NO-SUCH-LANE", 3, seed=1)


async def test_the_demo_seeds_history_once(
    db: AsyncSession, engine: AsyncEngine, settings: Settings
) -> None:
    from app.core.db import make_sessionmaker
    from simulators import demo

    sessions = make_sessionmaker(engine)
    assert await demo.seed_history(settings, sessions) == 2 * demo.HISTORY_N
    assert await demo.seed_history(settings, sessions) == 0
    per_lane = (await db.execute(select(Shipment.lane_id, func.count()).where(
        Shipment.status == "received").group_by(Shipment.lane_id))).all()
    assert sorted(n for _, n in per_lane) == [demo.HISTORY_N] * 2
