"""Forecast storage: lane models (rebuilt when a lane's deliveries change) and the per-shipment
forecasts the engine writes as it judges shipments. Takes the caller's session; flushes only."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.forecast.adapter import Prediction, Where, lane_model, predict
from alerts.forecast.core import UNKNOWN, Assumption, LaneModel
from alerts.forecast.history import Circle, segments_h
from alerts.rules import LaneSpec
from alerts.specs import lane_spec
from app.core.models import (
    Lane,
    LaneForecastModel,
    LaneWaypoint,
    Packaging,
    Reading,
    Shipment,
    ShipmentForecast,
)
from app.dashboard.lanes import Fix

log = logging.getLogger(__name__)
# The most recent deliveries a lane model keeps (bounded rebuild work and model size).
MAX_HISTORY = 500
# A lane's model is rebuilt at least this often (corrected or voided deliveries) and, when a
# newer delivery is judged, at most this often.
REBUILD_AFTER = timedelta(hours=1)
MIN_REBUILD = timedelta(minutes=1)
# A forecast whose shipment has not moved on (same segment, since, deadline) is kept this long;
# the elapsed time changes it, but slowly against journeys of hours.
FRESH = timedelta(minutes=10)
# Rows per INSERT … ON CONFLICT (14 parameters each: far below PostgreSQL's 32 767).
CHUNK = 1000


def _arrived() -> Any:
    # Delivered, or received if that came first (rule 6's timeline); LEAST skips NULLs.
    return func.least(Shipment.delivered_at, Shipment.received_at)


def _delivered_on(lane_ids: Sequence[uuid.UUID]) -> Any:
    # Only shipments that travelled the lane end to end: a rerouted one's transit is part another
    # lane's (as lane performance counts them).
    return (Shipment.planned_lane_id.in_(lane_ids), Shipment.lane_id == Shipment.planned_lane_id,
            Shipment.departed_at.is_not(None), _arrived().is_not(None))


@dataclass(frozen=True, slots=True)
class _Built:
    built_at: datetime
    totals: list[float]
    segments: list[list[float]]


# Lane histories this process has read, by lane and build time (another process's rebuild has
# another build time): a batch of evaluations reads three columns per lane, not the history.
_SEEN: dict[uuid.UUID, _Built] = {}
MAX_SEEN = 10_000


async def lane_models(
    session: AsyncSession, lanes: Mapping[uuid.UUID, LaneSpec], *, now: datetime,
    delivered: Mapping[uuid.UUID, datetime] | None = None, store: bool = True,
) -> dict[uuid.UUID, LaneModel]:
    """Each lane's model. Rebuilt from its deliveries (and stored, unless `store` is False) when
    it is missing, older than REBUILD_AFTER (corrected or voided deliveries), or `delivered`
    names a delivery on the lane newer than those it knows — at most once per MIN_REBUILD."""
    if not lanes:
        return {}
    ids = sorted(lanes)
    rows = {r.lane_id: r for r in (await session.execute(
        select(LaneForecastModel.lane_id, LaneForecastModel.built_at,
               LaneForecastModel.last_delivered_at)
        .where(LaneForecastModel.lane_id.in_(ids)))).all()}
    out: dict[uuid.UUID, LaneModel] = {}
    for lid in ids:
        row = rows.get(lid)
        newest = (delivered or {}).get(lid)
        if row is None or row.built_at < now - REBUILD_AFTER or (
                newest is not None and (row.last_delivered_at is None
                                        or newest > row.last_delivered_at)
                and row.built_at < now - MIN_REBUILD):
            built = await _rebuild(session, lid, lanes[lid], now, store)
        else:
            seen = _SEEN.get(lid)
            if seen is not None and seen.built_at == row.built_at:
                built = seen
            else:
                m = await session.get_one(LaneForecastModel, lid, populate_existing=True)
                built = _remember(lid, _Built(m.built_at, list(m.totals_h), list(m.segments_h)))
        out[lid] = lane_model(lanes[lid], built.totals, built.segments)
    return out


def _remember(lane_id: uuid.UUID, built: _Built) -> _Built:
    if len(_SEEN) >= MAX_SEEN:
        _SEEN.clear()
    _SEEN[lane_id] = built
    return built


async def _rebuild(
    session: AsyncSession, lane_id: uuid.UUID, lane: LaneSpec, now: datetime, store: bool
) -> _Built:
    totals, segments = await build_history(session, lane_id, lane)
    built = _Built(now, totals, segments)
    if not store:
        return built
    # The newest delivery of any shipment now on the lane (rerouted ones too, though the history
    # leaves them out): a delivery no newer than it triggers no rebuild.
    last = await session.scalar(select(func.max(_arrived())).where(Shipment.lane_id == lane_id))
    values = {"lane_id": lane_id, "delivered_n": len(totals), "last_delivered_at": last,
              "totals_h": totals, "segments_h": segments, "built_at": now}
    await session.execute(insert(LaneForecastModel).values(values).on_conflict_do_update(
        index_elements=["lane_id"], set_={k: v for k, v in values.items() if k != "lane_id"}))
    return _remember(lane_id, built)


async def build_history(
    session: AsyncSession, lane_id: uuid.UUID, lane: LaneSpec
) -> tuple[list[float], list[list[float]]]:
    """The lane's latest deliveries: transit hours of each, and the segments of those whose every
    waypoint passage the positions show (reads history: only when the deliveries changed)."""
    delivered = (await session.execute(
        select(Shipment.id, Shipment.departed_at, _arrived().label("arrived"))
        .where(*_delivered_on([lane_id])).order_by(_arrived().desc(), Shipment.id)
        .limit(MAX_HISTORY))).all()
    totals = [(r.arrived - r.departed_at).total_seconds() / 3600.0 for r in delivered]
    if not delivered:
        return [], []
    fixes: dict[uuid.UUID, list[Fix]] = {r.id: [] for r in delivered}
    if lane.waypoints:
        for r in (await session.execute(
                select(Reading.shipment_id, Reading.ts, Reading.lat, Reading.lon)
                .where(Reading.shipment_id.in_(list(fixes)), Reading.lat.is_not(None),
                       Reading.lon.is_not(None))
                .order_by(Reading.shipment_id, Reading.ts))).all():
            sid, ts, lat, lon = r
            if sid is not None and lat is not None and lon is not None:  # by the query
                fixes[sid].append(Fix(ts.timestamp(), lat, lon))
    circles = [Circle(w.lat, w.lon, w.radius_km) for w in lane.waypoints]
    segments = []
    for r in delivered:
        seg = segments_h(fixes[r.id], circles, r.departed_at.timestamp(), r.arrived.timestamp())
        if seg is not None and min(seg) >= 0:
            segments.append(list(seg))
    return totals, segments


@dataclass(frozen=True, slots=True)
class Job:
    """One shipment to forecast: the lane in force, its spec, and where the engine found it."""

    shipment_id: uuid.UUID
    lane_id: uuid.UUID
    lane: LaneSpec
    where: Where


async def refresh(session: AsyncSession, jobs: Sequence[Job], now: datetime) -> int:
    """Forecast the shipments and store the forecasts (one upsert per chunk); returns how many.

    A shipment whose place (segment, since when, deadline, lane …) is as stored and whose forecast
    is younger than FRESH keeps it: a burst of readings costs one look-up, not a forecast each,
    and the routine re-check renews it every FRESH at least. Shipments whose forecast raises keep
    their previous one (logged): alerting must not depend on it."""
    stored = {r.shipment_id: r for r in (await session.execute(
        select(ShipmentForecast.__table__).where(
            ShipmentForecast.shipment_id.in_([j.shipment_id for j in jobs])))).all()}
    jobs = [j for j in jobs if not _fresh(j, stored.get(j.shipment_id), now)]
    if not jobs:
        return 0
    newest: dict[uuid.UUID, datetime] = {}
    for j in jobs:
        at = j.where.delivered_at
        if at is not None and (j.lane_id not in newest or at > newest[j.lane_id]):
            newest[j.lane_id] = at
    models = await lane_models(session, {j.lane_id: j.lane for j in jobs}, now=now,
                               delivered=newest)
    rows = []
    for j in jobs:
        try:
            p = predict(models[j.lane_id], j.where, now)
        except (ArithmeticError, ValueError, IndexError):
            log.exception("forecast of shipment %s failed; the previous one stays", j.shipment_id)
            continue
        rows.append(_row(j, p, now))
    for i in range(0, len(rows), CHUNK):
        stmt = insert(ShipmentForecast).values(rows[i:i + CHUNK])
        await session.execute(stmt.on_conflict_do_update(
            index_elements=["shipment_id"],
            set_={c: stmt.excluded[c] for c in rows[0] if c != "shipment_id"}))
    return len(rows)


def _fresh(j: Job, row: Any, now: datetime) -> bool:
    return row is not None and row.lane_id == j.lane_id and now - FRESH < row.computed_at <= now \
        and stored_where(row) == j.where


def _row(j: Job, p: Prediction, now: datetime) -> dict[str, Any]:
    w = j.where
    return {
        "shipment_id": j.shipment_id, "lane_id": j.lane_id,
        "on_time_probability": p.on_time_probability, "arrival_p50": p.arrival_p50,
        "arrival_p90": p.arrival_p90, "method": p.method, "delivered_n": p.delivered_n,
        "hold_deadline": w.hold_deadline, "leg_started_at": w.leg_started_at,
        "segment": w.segment, "segment_since": w.segment_since, "overrun_h": w.overrun_h,
        "delivered_at": w.delivered_at, "computed_at": now,
    }


def stored_where(row: Any) -> Where:
    """The place stored with a forecast (a `shipment_forecasts` row, ORM or plain)."""
    return Where(row.leg_started_at, row.segment, row.segment_since, row.overrun_h,
                 row.hold_deadline, row.delivered_at)


async def what_if(
    session: AsyncSession, shipment_id: uuid.UUID, now: datetime, assumption: Assumption
) -> tuple[Where, Prediction]:
    """The shipment's stored place (before the engine's first judgement: its departure, its
    segment unknown), now, under an assumption. Writes nothing (a lane model found stale is
    rebuilt in memory; the engine stores it)."""
    row = await session.get(ShipmentForecast, shipment_id)
    if row is not None:
        lane_id, w = row.lane_id, stored_where(row)
    else:
        s = (await session.execute(
            select(Shipment.lane_id, Shipment.departed_at, Shipment.packed_at,
                   Shipment.recharged_at, _arrived().label("arrived"), Packaging.qualified_hold_h)
            .join(Packaging, Packaging.id == Shipment.packaging_id)
            .where(Shipment.id == shipment_id))).one()
        deadline = (s.recharged_at or s.packed_at) + timedelta(hours=s.qualified_hold_h)
        lane_id = s.lane_id
        w = Where(s.departed_at, UNKNOWN, s.departed_at, 0.0, deadline, s.arrived)
    lane = await session.get(Lane, lane_id)
    waypoints = (await session.scalars(
        select(LaneWaypoint).where(LaneWaypoint.lane_id == lane_id))).all()
    models = await lane_models(session, {lane_id: lane_spec(lane, waypoints)}, now=now,
                               store=False)
    return w, predict(models[lane_id], w, now, assumption)
