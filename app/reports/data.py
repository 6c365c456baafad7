"""Everything a release report states, loaded in one transaction into plain values."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from alerts.rules import EvalConfig, ShipmentSpec
from alerts.specs import lane_spec, shipment_spec
from app.core.errors import NotFound
from app.core.models import (
    Alert,
    AlertEvent,
    Excursion,
    Lane,
    Logger,
    Packaging,
    Product,
    Reading,
    Shipment,
    ShipmentDocument,
    ShipmentEvent,
    ShipmentLogger,
    ShipmentState,
    Site,
)
from app.services.reference import get_lane, snapshot


class RecordReading(NamedTuple):
    """One line of the report's reading record: the CSV export's columns, in its order."""

    logger_id: str
    ts: datetime
    temp_c: float
    lat: float | None
    lon: float | None
    battery_pct: float | None
    light: bool | None
    shock_g: float | None
    humidity_pct: float | None
    ln2_level_pct: float | None
    seq: int | None
    received_at: datetime
    payload_sha256: bytes


READING_COLUMNS = RecordReading._fields
DOCUMENT_COLUMNS = ("id", "kind", "filename", "content_type", "size", "sha256", "expires_at",
                    "uploaded_by", "uploaded_at")


@dataclass(frozen=True, slots=True)
class ReportData:
    generated_at: datetime
    shipment: dict[str, Any]
    product: dict[str, Any]
    packaging: dict[str, Any]
    lane: dict[str, Any]  # the lane of registration
    reroute_lanes: dict[uuid.UUID, dict[str, Any]]  # lanes `rerouted` events put it on
    origin: dict[str, Any]
    destination: dict[str, Any]
    loggers: list[dict[str, Any]]
    events: list[dict[str, Any]]  # the custody chain (corrected events carry their correction)
    voided_events: list[dict[str, Any]]  # taken out of the chain by a coordinator's correction
    readings: list[RecordReading]  # in (ts, logger_id) order
    excursions: list[dict[str, Any]]
    alerts: list[dict[str, Any]]  # each with its "events" (transitions, comments)
    documents: list[dict[str, Any]]  # attached documents' metadata (not their bytes)
    state: dict[str, Any] | None
    spec: ShipmentSpec  # what the engine judges (alerts/specs.py): the statistics use it


def _plain(row: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: v for k, v in snapshot(row).items() if k not in drop}


async def find_shipment(session: AsyncSession, key: str) -> Shipment:
    """A shipment by id or by reference."""
    try:
        as_id: uuid.UUID | None = uuid.UUID(key)
    except ValueError:
        as_id = None
    shipment = await session.get(Shipment, as_id) if as_id is not None else None
    if shipment is None:
        shipment = await session.scalar(select(Shipment).where(Shipment.reference == key))
    if shipment is None:
        raise NotFound("shipment", key)
    return shipment


async def load(session: AsyncSession, shipment: Shipment, now: datetime) -> ReportData:
    product = await session.get(Product, shipment.product_id)
    packaging = await session.get(Packaging, shipment.packaging_id)
    lane: Lane = await get_lane(session, shipment.planned_lane_id)
    origin = await session.get(Site, shipment.origin_site_id)
    destination = await session.get(Site, shipment.destination_site_id)
    assert product is not None and packaging is not None
    assert origin is not None and destination is not None
    assigned = (await session.execute(
        select(ShipmentLogger, Logger).join(Logger, Logger.id == ShipmentLogger.logger_id)
        .where(ShipmentLogger.shipment_id == shipment.id).order_by(ShipmentLogger.logger_id)
    )).all()
    recorded = (await session.scalars(
        select(ShipmentEvent).where(ShipmentEvent.shipment_id == shipment.id)
        .order_by(ShipmentEvent.at, ShipmentEvent.recorded_at)
    )).all()
    rerouted = {row.id: row for row in (await session.scalars(
        select(Lane).options(selectinload(Lane.waypoints))
        .where(Lane.id.in_({e.lane_id for e in recorded if e.lane_id is not None})))).all()}
    reroute_lanes = {lane_id: _plain(row) for lane_id, row in rerouted.items()}
    spec = shipment_spec(
        shipment, product, packaging.qualified_hold_h,
        {lane_id: lane_spec(row, row.waypoints) for lane_id, row in {**rerouted, lane.id: lane}.items()},
        {lg.id: lg for _, lg in assigned}.values(), [e for e in recorded if e.voided_at is None],
        EvalConfig(),
    )
    gaps = dict(spec.max_gap_s)
    loggers = [
        {"logger_id": sl.logger_id, "reporting_interval_s": lg.reporting_interval_s,
         "max_gap_s": gaps[sl.logger_id],
         "assigned_from": sl.assigned_from, "assigned_until": sl.assigned_until}
        for sl, lg in assigned
    ]
    readings = (await session.execute(
        select(*(getattr(Reading, c) for c in READING_COLUMNS))
        .where(Reading.shipment_id == shipment.id).order_by(Reading.ts, Reading.logger_id)
    )).all()
    excursions = (await session.scalars(
        select(Excursion).where(Excursion.shipment_id == shipment.id)
        .order_by(Excursion.start, Excursion.kind)
    )).all()
    alerts = (await session.scalars(
        select(Alert).where(Alert.shipment_id == shipment.id).order_by(Alert.opened_at, Alert.kind)
    )).all()
    transitions: dict[uuid.UUID, list[dict[str, Any]]] = {}
    if alerts:
        for ev in (await session.scalars(
            select(AlertEvent).where(AlertEvent.alert_id.in_([a.id for a in alerts]))
            .order_by(AlertEvent.id)
        )).all():
            transitions.setdefault(ev.alert_id, []).append(
                {"type": ev.type, "at": ev.at, "actor": ev.actor, "comment": ev.comment}
            )
    state = await session.get(ShipmentState, shipment.id)
    documents = (await session.execute(
        select(*(getattr(ShipmentDocument, c) for c in DOCUMENT_COLUMNS))
        .where(ShipmentDocument.shipment_id == shipment.id)
        .order_by(ShipmentDocument.uploaded_at, ShipmentDocument.id))).all()
    return ReportData(
        generated_at=now,
        shipment=_plain(shipment),
        product=_plain(product),
        packaging=_plain(packaging),
        lane={**_plain(lane), "waypoints": [_plain(w, ("id", "lane_id")) for w in lane.waypoints]},
        reroute_lanes=reroute_lanes,
        origin=_plain(origin),
        destination=_plain(destination),
        loggers=loggers,
        events=[_plain(e, ("shipment_id",)) for e in recorded if e.voided_at is None],
        voided_events=[_plain(e, ("shipment_id",)) for e in recorded if e.voided_at is not None],
        readings=[RecordReading._make(r) for r in readings],
        excursions=[_plain(e, ("shipment_id",)) for e in excursions],
        alerts=[{**_plain(a, ("shipment_id",)), "events": transitions.get(a.id, [])}
                for a in alerts],
        documents=[dict(r._mapping) for r in documents],
        state=_plain(state, ("engine_state", "shipment_id")) if state is not None else None,
        spec=spec,
    )
