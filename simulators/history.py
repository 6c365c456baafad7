"""A lane's delivered history, simulated: journeys drawn from a known distribution, played by the
scenario models (route, thermal, logger) and stored as delivered and received shipments.

The journey of one shipment (hours; seeded): 1–2 h at the first waypoint before departure; travel
legs proportional to their great-circle length, the travel time in all being the lane's expected
transit less the mean dwells, each leg × log-normal(σ 0.15); dwell at an intermediate waypoint
~ gamma(shape 3, mean ½ its allowance), at a customs waypoint (named like "customs") ~ gamma(shape
1.5, mean 0.6 × its allowance) — a longer tail, sometimes past the allowance; delivery on arrival at
the last waypoint (received 1 h later).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.rules import haversine_km
from app.core.db import make_engine, make_sessionmaker
from app.core.errors import InvalidField
from app.core.handoff import enqueue_evaluation
from app.core.models import Lane, Logger, Packaging, Product, Reading, Shipment, utcnow
from app.core.settings import Settings
from app.schemas.reference import LoggerIn, PackagingIn, ProductIn
from app.schemas.shipments import ShipmentEventIn, ShipmentIn
from app.services import reference as ref
from app.services import shipments as svc
from simulators.plan import build
from simulators.provision import SIMULATOR
from simulators.scenario import Scenario, parse

INTERVAL_S = 900  # a reading every 15 min: positions enough to see each waypoint passage
FLIGHT_KM = 500.0  # legs longer than this fly (no GPS fix in the hold)
TRAVEL_SIGMA = 0.15
CHUNK = 5000


@dataclass(frozen=True, slots=True)
class LanePlan:
    name: str
    expected_h: float
    max_h: float
    corridor_km: float
    waypoints: tuple[dict[str, Any], ...]  # name, lat, lon, radius_km, dwell_allowance_h


def _km(a: dict[str, Any], b: dict[str, Any]) -> float:
    return haversine_km(a["lat"], a["lon"], b["lat"], b["lon"])


def is_customs(w: dict[str, Any]) -> bool:
    return "customs" in str(w["name"]).casefold()


def mean_dwell_h(w: dict[str, Any]) -> float:
    return (0.6 if is_customs(w) else 0.5) * float(w["dwell_allowance_h"])


def steps(lane: LanePlan, rng: random.Random) -> list[dict[str, Any]]:
    """One journey's steps (scenario step tables) drawn as the module doc says."""
    wps = lane.waypoints
    inner = wps[1:-1]
    travel_h = max(lane.expected_h - sum(mean_dwell_h(w) for w in inner), 0.3 * lane.expected_h)
    lengths = [max(_km(a, b), 1.0) for a, b in zip(wps, wps[1:], strict=False)]
    out: list[dict[str, Any]] = [
        {"kind": "dwell", "waypoint": 0, "hours": rng.uniform(1.0, 2.0), "ambient": "room"}]
    for i, km in enumerate(lengths, start=1):
        hours = travel_h * km / sum(lengths) * rng.lognormvariate(0.0, TRAVEL_SIGMA)
        flight = km > FLIGHT_KM
        out.append({"kind": "flight" if flight else "truck", "waypoint": i,
                    "hours": max(hours, 0.1), "ambient": "aircraft_hold" if flight else "reefer"})
        w = wps[i]
        if i == len(wps) - 1:
            out.append({"kind": "dwell", "waypoint": i, "hours": 1.5, "ambient": "room"})
        elif is_customs(w):
            out.append({"kind": "customs", "waypoint": i, "ambient": "customs_hall",
                        "coverage": True, "hours": max(rng.gammavariate(1.5, mean_dwell_h(w) / 1.5),
                                                       0.05)})
        else:
            out.append({"kind": "dwell", "waypoint": i, "ambient": "warehouse",
                        "hours": max(rng.gammavariate(3.0, mean_dwell_h(w) / 3.0), 0.05)})
    return out


def shipper_for(temp_max_c: float) -> str:
    if temp_max_c <= -120:
        return "ln2_dry_shipper"
    return "dry_ice" if temp_max_c <= -40 else "passive_2_8"


def scenario(lane: LanePlan, *, temp_max_c: float, hold_h: float, seed: int,
             logger_id: str) -> Scenario:
    rng = random.Random(seed)
    return parse({
        "name": f"history-{seed}", "seed": seed,
        "product": {"name": "history"},
        "packaging": {"name": "history", "shipper": shipper_for(temp_max_c),
                      "qualified_hold_h": hold_h},
        "lane": {"name": lane.name, "expected_transit_h": lane.expected_h,
                 "max_transit_h": lane.max_h, "corridor_km": lane.corridor_km,
                 "origin": {}, "destination": {}, "waypoints": list(lane.waypoints)},
        "loggers": [{"id": logger_id, "interval_s": INTERVAL_S,
                     "channels": ["position", "battery"]}],
        "steps": steps(lane, rng),
    })


def lane_plan(lane: Lane) -> LanePlan:
    if len(lane.waypoints) < 2:
        raise InvalidField("lane", "a simulated history needs a lane with at least two waypoints "
                                   "(its first and last are where it starts and ends)")
    return LanePlan(lane.name, lane.expected_transit_h, lane.max_transit_h, lane.corridor_km,
                    tuple({"name": w.name, "lat": w.lat, "lon": w.lon, "radius_km": w.radius_km,
                           "dwell_allowance_h": w.dwell_allowance_h} for w in lane.waypoints))


async def find_lane(session: AsyncSession, lane: str) -> Lane:
    """A lane by id or by its exact name (the most recent of that name)."""
    try:
        return await ref.get_lane(session, uuid.UUID(lane))
    except ValueError:
        pass
    found = await session.scalar(select(Lane.id).where(Lane.name == lane)
                                 .order_by(Lane.created_at.desc()).limit(1))
    if found is None:
        raise InvalidField("lane", f"no lane with id or name {lane!r}")
    return await ref.get_lane(session, found)


async def _profiles(session: AsyncSession, lane: Lane) -> tuple[Product, Packaging]:
    """The product and packaging of the lane's latest shipment, else a 2–8 °C default."""
    latest = await session.scalar(select(Shipment).where(Shipment.lane_id == lane.id)
                                  .order_by(Shipment.created_at.desc()).limit(1))
    if latest is not None:
        product = await session.get(Product, latest.product_id)
        packaging = await session.get(Packaging, latest.packaging_id)
        if product is not None and packaging is not None:
            return product, packaging
    product = await ref.create_product(session, SIMULATOR, ProductIn(
        name="Simulated history, 2–8 °C", temp_min_c=2.0, temp_max_c=8.0,
        stability_budget_s=7200))
    packaging = await ref.create_packaging(session, SIMULATOR, PackagingIn(
        name="Simulated history, passive", qualified_hold_h=max(96.0, 2 * lane.max_transit_h)))
    return product, packaging


async def generate(
    session: AsyncSession, lane_ref: str, n: int, *, seed: int, now: datetime,
    profiles: tuple[uuid.UUID, uuid.UUID] | None = None,
) -> list[uuid.UUID]:
    """`n` delivered and received shipments on the lane, ending before `now` (flushes only);
    `profiles`: their (product, packaging), by default the lane's latest shipment's.
    Idempotent per (lane, seed): references that exist are skipped."""
    lane = await find_lane(session, lane_ref)
    plan = lane_plan(lane)
    if profiles is None:
        product, packaging = await _profiles(session, lane)
    else:
        product = await session.get_one(Product, profiles[0])
        packaging = await session.get_one(Packaging, profiles[1])
    tag = f"{str(lane.id)[:8]}-{seed}"
    rng = random.Random(seed)
    created = []
    for i in range(n):
        reference = f"HIST-{tag}-{i:03d}"
        if await session.scalar(select(Shipment.id).where(Shipment.reference == reference)):
            continue
        logger_id = f"hist-{tag}-{i:03d}"
        sc = scenario(plan, temp_max_c=product.temp_max_c, hold_h=packaging.qualified_hold_h,
                      seed=rng.randrange(2**31), logger_id=logger_id)
        # Spread over the past fortnight, every journey over by now.
        t0 = now - timedelta(seconds=sc.duration_s) - timedelta(days=14 * (n - i) / n)
        created.append(await _store(session, sc, reference, logger_id, lane, product, packaging,
                                    t0))
    return created


async def _store(session: AsyncSession, sc: Scenario, reference: str, logger_id: str,
                 lane: Lane, product: Product, packaging: Packaging, t0: datetime) -> uuid.UUID:
    played = build(sc)
    if await session.get(Logger, logger_id) is None:
        await ref.create_logger(session, SIMULATOR,
                                LoggerIn(id=logger_id, reporting_interval_s=INTERVAL_S))
    shipment = await svc.create_shipment(session, SIMULATOR, ShipmentIn(
        reference=reference, lane_id=lane.id, product_id=product.id, packaging_id=packaging.id,
        logger_ids=[logger_id], packed_at=t0))
    for ev in played.events:
        await svc.add_event(session, SIMULATOR, shipment.id, ShipmentEventIn(
            type=ev.type, at=t0 + timedelta(seconds=ev.offset_s), note="simulated history"))
    readings = sorted({r for lp in played.loggers for r in lp.sent}, key=lambda r: r.offset_s)
    rows = [{"logger_id": logger_id, "ts": t0 + timedelta(seconds=r.offset_s),
             "shipment_id": shipment.id, "temp_c": r.temp_c, "lat": r.lat, "lon": r.lon,
             "battery_pct": r.battery_pct, "seq": r.seq,
             "received_at": t0 + timedelta(seconds=r.offset_s)} for r in readings]
    for i in range(0, len(rows), CHUNK):
        await session.execute(insert(Reading).on_conflict_do_nothing(), rows[i:i + CHUNK])
    await enqueue_evaluation(session, shipment.id, t0)
    return shipment.id


async def run(settings: Settings, lane: str, n: int, seed: int) -> list[uuid.UUID]:
    """`coldchain simulate history`: one transaction; the alerts role judges the shipments
    (and rebuilds the lane's forecast model) once they are committed."""
    engine = make_engine(settings.database_url or "", pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            return await generate(session, lane, n, seed=seed, now=utcnow())
    finally:
        await engine.dispose()
