"""Lane performance from the delivered shipments of a lane (reads history; not on a hot path)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import Alert, Excursion, Packaging, Reading, Shipment
from app.dashboard.lanes import Fix, distribution, dwell_s, transit_summary
from app.services.reference import get_lane

TEMPERATURE_KINDS = ("temperature_high", "temperature_low", "temperature_critical")
# The most recent deliveries that are analysed (bounded work per request).
MAX_SHIPMENTS = 500


async def lane_performance(
    session: AsyncSession, lane_id: uuid.UUID, since: datetime | None = None
) -> dict[str, Any]:
    lane = await get_lane(session, lane_id)
    stmt = (
        select(Shipment.id, Shipment.departed_at, Shipment.delivered_at, Shipment.packed_at,
               Shipment.recharged_at, Packaging.qualified_hold_h)
        .join(Packaging, Packaging.id == Shipment.packaging_id)
        .where(Shipment.lane_id == lane_id, Shipment.delivered_at.is_not(None),
               Shipment.departed_at.is_not(None),
               # Only shipments that travelled this lane end to end: a rerouted one's transit
               # is part another lane's.
               Shipment.planned_lane_id == lane_id)
        .order_by(Shipment.delivered_at.desc()).limit(MAX_SHIPMENTS)
    )
    if since is not None:
        stmt = stmt.where(Shipment.delivered_at >= since)
    delivered = (await session.execute(stmt)).all()
    ids = [row.id for row in delivered]
    transit = [(row.delivered_at - row.departed_at).total_seconds() / 3600 for row in delivered]
    # Rule 6: delivered by the deadline of the charge in force (packed, or the latest recharge).
    on_time = [row.delivered_at <= (row.recharged_at or row.packed_at)
               + timedelta(hours=row.qualified_hold_h) for row in delivered]
    fixes: dict[uuid.UUID, list[Fix]] = {i: [] for i in ids}
    if ids and lane.waypoints:
        rows = await session.execute(
            select(Reading.shipment_id, Reading.ts, Reading.lat, Reading.lon)
            .where(Reading.shipment_id.in_(ids), Reading.lat.is_not(None),
                   Reading.lon.is_not(None))
            .order_by(Reading.shipment_id, Reading.ts)
        )
        for sid, ts, lat, lon in rows.all():
            fixes[sid].append(Fix(ts.timestamp(), lat, lon))
    dwell = []
    for i, w in enumerate(lane.waypoints):
        hours = [dwell_s(fixes[sid], w.lat, w.lon, w.radius_km) / 3600 for sid in ids]
        dwell.append({
            **distribution(hours), "position": i, "name": w.name,
            "dwell_allowance_h": w.dwell_allowance_h,
            "over_allowance": sum(1 for h in hours if h > w.dwell_allowance_h),
        })
    with_excursions = 0
    by_kind: dict[str, int] = {}
    if ids:
        with_excursions = await session.scalar(
            select(func.count(distinct(Excursion.shipment_id)))
            .where(Excursion.shipment_id.in_(ids), Excursion.kind.in_(TEMPERATURE_KINDS))
        ) or 0
        rows = await session.execute(
            select(Alert.kind, func.count()).where(Alert.shipment_id.in_(ids))
            .group_by(Alert.kind).order_by(Alert.kind)
        )
        by_kind = {kind: count for kind, count in rows.all()}
    return {
        "lane_id": lane.id, "name": lane.name, "delivered_shipments": len(ids),
        "transit_h": transit_summary(transit, lane.expected_transit_h, lane.max_transit_h,
                                     on_time),
        "dwell_h": dwell,
        "shipments_with_excursions": with_excursions,
        "excursion_rate": with_excursions / len(ids) if ids else None,
        "alerts_by_kind": by_kind,
        "since": since,
    }
