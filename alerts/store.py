"""Load what the evaluation needs for many shipments at once: profiles, lane, events, loggers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.rules import (
    AlertView,
    EvalConfig,
    LaneSpec,
    ProductProfile,
    Sample,
    ShipmentEvent,
    ShipmentSpec,
    Waypoint,
    max_gap_for,
)
from app.core.models import (
    Alert,
    Lane,
    LaneWaypoint,
    Logger,
    Packaging,
    Product,
    Shipment,
    ShipmentLogger,
)
from app.core.models import Reading as ReadingRow
from app.core.models import (
    ShipmentEvent as EventRow,
)

READING_COLUMNS = (
    ReadingRow.logger_id, ReadingRow.ts, ReadingRow.temp_c, ReadingRow.lat, ReadingRow.lon,
    ReadingRow.battery_pct, ReadingRow.light, ReadingRow.shock_g, ReadingRow.received_at,
)


@dataclass
class Bundle:
    """One shipment's evaluation inputs."""

    shipment: Any  # the shipments row (status, dates …)
    spec: ShipmentSpec
    received: dict[str, datetime | None] = field(default_factory=dict)


def product_profile(p: Any) -> ProductProfile:
    return ProductProfile(
        temp_min_c=p.temp_min_c, temp_max_c=p.temp_max_c, stability_budget_s=p.stability_budget_s,
        alarm_delay_s=p.alarm_delay_s, critical_min_c=p.critical_min_c,
        critical_max_c=p.critical_max_c, shock_limit_g=p.shock_limit_g,
        light_sensitive=p.light_sensitive,
    )


def lane_spec(lane: Lane, waypoints: Sequence[LaneWaypoint]) -> LaneSpec:
    return LaneSpec(
        expected_transit_h=lane.expected_transit_h, max_transit_h=lane.max_transit_h,
        corridor_km=lane.corridor_km,
        waypoints=tuple(
            Waypoint(w.name, w.lat, w.lon, w.radius_km, w.dwell_allowance_h)
            for w in sorted(waypoints, key=lambda w: w.position)
        ),
    )


async def load_bundles(
    session: AsyncSession, shipment_ids: Sequence[uuid.UUID], config: EvalConfig
) -> dict[uuid.UUID, Bundle]:
    """A handful of queries whatever the number of shipments (the sweep loads thousands)."""
    if not shipment_ids:
        return {}
    shipments = {r.id: r for r in (await session.execute(
        select(*Shipment.__table__.c).where(Shipment.id.in_(shipment_ids)))).all()}
    products = {r.id: r for r in (await session.execute(
        select(*Product.__table__.c).where(Product.id.in_({s.product_id for s in shipments.values()}))
    )).all()}
    holds = dict((await session.execute(
        select(Packaging.id, Packaging.qualified_hold_h)
        .where(Packaging.id.in_({s.packaging_id for s in shipments.values()})))).all())
    rows = [(s, products[s.product_id], holds[s.packaging_id]) for s in shipments.values()]
    event_rows = (await session.execute(
        select(EventRow.shipment_id, EventRow.type, EventRow.at, EventRow.lane_id)
        .where(EventRow.shipment_id.in_(shipment_ids), EventRow.voided_at.is_(None))
        .order_by(EventRow.at, EventRow.recorded_at))).all()
    # Rule 6: judged on the lane of registration, then on each lane a reroute put it on.
    lane_ids = {r[0].planned_lane_id for r in rows} | {e.lane_id for e in event_rows if e.lane_id}
    lanes = {lane.id: lane for lane in (await session.scalars(
        select(Lane).where(Lane.id.in_(lane_ids)))).all()}
    waypoints: dict[uuid.UUID, list[LaneWaypoint]] = {}
    for w in (await session.scalars(
            select(LaneWaypoint).where(LaneWaypoint.lane_id.in_(lane_ids)))).all():
        waypoints.setdefault(w.lane_id, []).append(w)
    lane_specs = {lid: lane_spec(lane, waypoints.get(lid, [])) for lid, lane in lanes.items()}
    events: dict[uuid.UUID, list[ShipmentEvent]] = {}
    for e in event_rows:
        lane = lane_specs[e.lane_id] if e.lane_id else None
        events.setdefault(e.shipment_id, []).append(ShipmentEvent(e.type, e.at, lane))
    loggers: dict[uuid.UUID, list[Any]] = {}
    for lg in (await session.execute(
            select(ShipmentLogger.shipment_id, Logger.id, Logger.reporting_interval_s,
                   Logger.last_received_at)
            .join(Logger, Logger.id == ShipmentLogger.logger_id)
            .where(ShipmentLogger.shipment_id.in_(shipment_ids)))).all():
        loggers.setdefault(lg.shipment_id, []).append(lg)
    out: dict[uuid.UUID, Bundle] = {}
    for shipment, product, hold_h in rows:
        mine = sorted(loggers.get(shipment.id, []), key=lambda lg: lg.id)
        spec = ShipmentSpec(
            packed_at=shipment.packed_at, qualified_hold_h=hold_h,
            product=product_profile(product), lane=lane_specs[shipment.planned_lane_id],
            max_gap_s=tuple(
                (lg.id, max_gap_for(lg.reporting_interval_s, shipment.max_gap_s)) for lg in mine
            ),
            events=tuple(events.get(shipment.id, [])),
            departed_at=shipment.departed_at, delivered_at=shipment.delivered_at,
            received_at=shipment.received_at, safety_margin_h=shipment.safety_margin_h,
            config=config,
        )
        out[shipment.id] = Bundle(shipment, spec, {lg.id: lg.last_received_at for lg in mine})
    return out


def alert_view(a: Alert) -> AlertView:
    return AlertView(
        id=str(a.id), kind=a.kind, severity=a.severity, state=a.state,
        condition_since=a.condition_since, opened_at=a.opened_at, retroactive=a.retroactive,
        last_evidence_at=a.last_evidence_at, severity_since=a.severity_since,
        escalated_at=a.escalated_at, occurrences=a.occurrences, details=dict(a.details or {}),
        reopened_at=a.reopened_at,
    )


def to_reading(row: Any) -> Sample:
    return Sample(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8])
