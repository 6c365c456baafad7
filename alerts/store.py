"""Load what the evaluation needs for many shipments at once: profiles, lane, events, loggers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.rules import AlertView, EvalConfig, ShipmentSpec
from alerts.specs import lane_spec, shipment_spec
from app.core.models import (
    Alert,
    Lane,
    LaneWaypoint,
    Logger,
    Packaging,
    Product,
    Shipment,
    ShipmentEvent,
    ShipmentLogger,
)


@dataclass
class Bundle:
    """One shipment's evaluation inputs."""

    shipment: Any  # the shipments row (status, dates …)
    spec: ShipmentSpec
    received: dict[str, datetime | None] = field(default_factory=dict)


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
        select(ShipmentEvent.shipment_id, ShipmentEvent.type, ShipmentEvent.at, ShipmentEvent.lane_id)
        .where(ShipmentEvent.shipment_id.in_(shipment_ids), ShipmentEvent.voided_at.is_(None))
        .order_by(ShipmentEvent.at, ShipmentEvent.recorded_at))).all()
    # Rule 6: judged on the lane of registration, then on each lane a reroute put it on.
    lane_ids = {r[0].planned_lane_id for r in rows} | {e.lane_id for e in event_rows if e.lane_id}
    lanes = {lane.id: lane for lane in (await session.scalars(
        select(Lane).where(Lane.id.in_(lane_ids)))).all()}
    waypoints: dict[uuid.UUID, list[LaneWaypoint]] = {}
    for w in (await session.scalars(
            select(LaneWaypoint).where(LaneWaypoint.lane_id.in_(lane_ids)))).all():
        waypoints.setdefault(w.lane_id, []).append(w)
    lane_specs = {lid: lane_spec(lane, waypoints.get(lid, [])) for lid, lane in lanes.items()}
    events: dict[uuid.UUID, list[Any]] = {}
    for e in event_rows:
        events.setdefault(e.shipment_id, []).append(e)
    loggers: dict[uuid.UUID, list[Any]] = {}
    for lg in (await session.execute(
            select(ShipmentLogger.shipment_id, Logger.id, Logger.reporting_interval_s,
                   Logger.last_received_at)
            .join(Logger, Logger.id == ShipmentLogger.logger_id)
            .where(ShipmentLogger.shipment_id.in_(shipment_ids)))).all():
        loggers.setdefault(lg.shipment_id, []).append(lg)
    out: dict[uuid.UUID, Bundle] = {}
    for shipment, product, hold_h in rows:
        mine = loggers.get(shipment.id, [])
        spec = shipment_spec(shipment, product, hold_h, lane_specs, mine,
                             events.get(shipment.id, []), config)
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

