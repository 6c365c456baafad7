"""Shipments: creation with logger assignment, custody/status events, and the summary rows."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.errors import Conflict, InvalidField, NotFound
from app.core.handoff import enqueue_evaluation
from app.core.models import (
    Lane,
    Logger,
    Packaging,
    Product,
    Reading,
    Shipment,
    ShipmentEvent,
    ShipmentForecast,
    ShipmentLogger,
    ShipmentState,
    utcnow,
)
from app.core.security import Principal
from app.core.signatures import signature_manifest
from app.dashboard.overview import FINISHED
from app.schemas.documents import Unready
from app.schemas.shipments import ShipmentEventIn, ShipmentIn
from app.services import custody, readiness, timeline
from app.services.packaging import ACTIVE_STATUSES, require_qualified
from app.services.reference import require_exists, snapshot


async def create_shipment(
    session: AsyncSession, principal: Principal, data: ShipmentIn
) -> Shipment:
    lane = await session.get(Lane, data.lane_id)
    if lane is None:
        raise InvalidField("lane_id", f"no such lane: {data.lane_id}")
    await require_exists(session, Product, data.product_id, "product_id")
    packaging = await session.get(Packaging, data.packaging_id)
    if packaging is None:
        raise InvalidField("packaging_id", f"no such packaging: {data.packaging_id}")
    require_qualified(packaging, data.packed_at)
    if data.departed_at is not None:
        # A registration that says it departed has no documents yet: on a lane that requires
        # some (or with packaging lapsing in transit) the departure is an event of its own.
        judged = readiness.judge(
            lane.required_documents, [], packaging_id=packaging.id,
            expected_arrival=data.departed_at + timedelta(hours=lane.expected_transit_h),
            requalified_until=packaging.requalified_until)
        if not judged.ready:
            raise Conflict(
                f"the shipment is not ready to depart ({judged.summary()}): register it without "
                "departed_at, attach its documents, then record the departure (a coordinator "
                "may override with override_reason)", field="departed_at",
                **unready(judged))
    if data.departed_at is not None and data.departed_at < data.packed_at:
        raise InvalidField("departed_at", "must not be before packed_at")
    if await session.scalar(select(Shipment.id).where(Shipment.reference == data.reference)):
        raise Conflict(f"a shipment with reference {data.reference} exists", field="reference")
    known = set(
        (await session.scalars(select(Logger.id).where(Logger.id.in_(data.logger_ids)))).all()
    )
    unknown = [i for i in data.logger_ids if i not in known]
    if unknown:
        raise InvalidField("logger_ids", f"unknown logger(s): {', '.join(unknown)}")
    busy = (
        await session.scalars(
            select(ShipmentLogger.logger_id)
            .join(Shipment, Shipment.id == ShipmentLogger.shipment_id)
            .where(
                ShipmentLogger.logger_id.in_(data.logger_ids),
                ShipmentLogger.assigned_until.is_(None),
                Shipment.status.in_(ACTIVE_STATUSES),
            )
        )
    ).all()
    if busy:
        raise Conflict(
            f"logger(s) already on an active shipment: {', '.join(sorted(busy))}",
            field="logger_ids",
        )
    shipment = Shipment(
        **data.model_dump(exclude={"logger_ids"}),
        planned_lane_id=lane.id,
        origin_site_id=lane.origin_site_id,
        destination_site_id=lane.destination_site_id,
        status="in_transit" if data.departed_at else "packed",
    )
    session.add(shipment)
    await session.flush()
    for logger_id in data.logger_ids:
        session.add(
            ShipmentLogger(
                shipment_id=shipment.id, logger_id=logger_id, assigned_from=data.packed_at
            )
        )
    await session.flush()
    # Readings that arrived before the shipment was registered belong to it too.
    await session.execute(
        update(Reading)
        .where(
            Reading.logger_id.in_(data.logger_ids),
            Reading.ts >= data.packed_at,
            Reading.shipment_id.is_(None),
        )
        .values(shipment_id=shipment.id)
    )
    await audit.record(
        session, principal, action="create", entity_type="shipment", entity_id=shipment.id,
        after={**snapshot(shipment), "logger_ids": data.logger_ids},
    )
    await enqueue_evaluation(session, shipment.id, data.packed_at)
    return shipment


async def get_visible_shipment(
    session: AsyncSession, principal: Principal, shipment_id: uuid.UUID, *, for_update: bool = False
) -> Shipment:
    """The shipment, or 404 — also when a site may not see it (its existence is not leaked)."""
    stmt = select(Shipment).where(Shipment.id == shipment_id)
    if for_update:
        # NO KEY UPDATE: serialises changes of the shipment without blocking foreign-key checks
        # (KEY SHARE) of rows that reference it. An ingest batch that holds its loggers' locks
        # enqueues this shipment's evaluation; a receipt waiting for those loggers (below) must
        # not block it, or the two would deadlock.
        stmt = stmt.with_for_update(key_share=True)
    shipment = await session.scalar(stmt)
    if shipment is None or not principal.sees(shipment.origin_site_id, shipment.destination_site_id):
        raise NotFound("shipment", shipment_id)
    return shipment


async def add_event(
    session: AsyncSession, principal: Principal, shipment_id: uuid.UUID, data: ShipmentEventIn
) -> ShipmentEvent:
    """Append a custody event that fits the chain in time (app.services.timeline); one before
    readings already stored is a late entry, recorded only with a `correction_reason`."""
    shipment = await get_visible_shipment(session, principal, shipment_id, for_update=True)
    if data.lane_id is not None:
        await require_exists(session, Lane, data.lane_id, "lane_id")
    chain, _ = await custody.load_chain(session, shipment)
    latest = await custody.latest_reading(session, shipment.id)
    lane = str(data.lane_id) if data.lane_id else None
    try:
        result, late = timeline.admit(
            chain, timeline.Step(data.type, data.at, lane), now=utcnow(), latest_reading=latest,
            late_entry_allowed=data.correction_reason is not None)
    except timeline.TimelineError as exc:
        raise custody.problem(exc) from exc
    override = await _departure_gate(session, shipment, data)
    before = snapshot(shipment)
    event = ShipmentEvent(
        shipment_id=shipment.id, type=data.type, at=data.at, lane_id=data.lane_id, note=data.note,
        recorded_by=principal.actor, late_entry=late, correction_reason=data.correction_reason,
        override_reason=data.override_reason if data.type == "departed" else None,
        override_unready=override,
    )
    session.add(event)
    await custody.apply_custody(session, shipment, result)
    await session.flush()
    await session.refresh(shipment)
    await audit.record(
        session, principal, action=f"event.{data.type}", entity_type="shipment",
        entity_id=shipment.id, before=before, after=snapshot(shipment),
        reason=data.correction_reason or data.note,
    )
    if override is not None:
        await audit.record(
            session, principal, action="readiness.override", entity_type="shipment",
            entity_id=shipment.id, after={"event_id": event.id, **override},
            reason=data.override_reason)
    await enqueue_evaluation(session, shipment.id, data.at)
    return event


def unready(judged: readiness.Readiness) -> dict[str, Any]:
    """What is missing and expired, as JSON values (problems, the event row, the audit)."""
    return {"missing": list(judged.missing),
            "expired": [Unready.model_validate(e).model_dump(mode="json", exclude_none=True)
                        for e in judged.expired]}


async def _departure_gate(
    session: AsyncSession, shipment: Shipment, data: ShipmentEventIn
) -> dict[str, Any] | None:
    """A departure while the shipment is not ready: 409 listing what is missing or expired,
    unless it carries an override reason — then what was overridden (None: nothing was)."""
    if data.type != "departed":
        return None
    judged = await readiness.readiness(session, shipment, now=utcnow(), departing_at=data.at)
    if judged.ready:
        return None
    if data.override_reason is None:
        raise Conflict(
            f"the shipment is not ready to depart ({judged.summary()}); a coordinator may record "
            "the departure anyway with override_reason", field="type", **unready(judged))
    return unready(judged)


def summary_select() -> Select[Any]:
    """Shipments joined with their maintained evaluation state and forecast (no reading scans)."""
    logger_ids = (
        select(func.array_agg(ShipmentLogger.logger_id))
        .where(ShipmentLogger.shipment_id == Shipment.id)
        .scalar_subquery()
    )
    return (
        select(Shipment, ShipmentState, Packaging.qualified_hold_h, Product.stability_budget_s,
               logger_ids.label("logger_ids"), ShipmentForecast)
        .join(Packaging, Packaging.id == Shipment.packaging_id)
        .join(Product, Product.id == Shipment.product_id)
        .outerjoin(ShipmentState, ShipmentState.shipment_id == Shipment.id)
        .outerjoin(ShipmentForecast, ShipmentForecast.shipment_id == Shipment.id)
    )


def forecast_at_risk(shipment: Shipment, forecast: ShipmentForecast | None,
                     risk_probability: float) -> bool:
    """In flight and unlikely to arrive before its hold deadline."""
    return (forecast is not None and shipment.status not in FINISHED
            and forecast.on_time_probability < risk_probability)


def forecast_dict(forecast: ShipmentForecast | None) -> dict[str, Any]:
    if forecast is None:
        return {"on_time_probability": None, "arrival_p50": None, "arrival_p90": None,
                "forecast_basis": None}
    return {"on_time_probability": forecast.on_time_probability,
            "arrival_p50": forecast.arrival_p50, "arrival_p90": forecast.arrival_p90,
            "forecast_basis": {"method": forecast.method, "delivered_n": forecast.delivered_n}}


def summary_dict(row: Any, risk_probability: float) -> dict[str, Any]:
    shipment, state, hold_h, budget_s, logger_ids, forecast = row
    used = state.stability_budget_used_s if state else 0.0
    last = None
    if state is not None and state.last_reading_ts is not None:
        last = {"ts": state.last_reading_ts, "temp_c": state.last_temp_c,
                "lat": state.last_lat, "lon": state.last_lon}
    # Rule 6: the last charge (packed, or the latest recharge) + the qualified hold — exact from
    # the row, so a recorded recharge shows at once, before the engine has judged it.
    hold_deadline = (shipment.recharged_at or shipment.packed_at) + timedelta(hours=hold_h)
    data = {c.key: getattr(shipment, c.key) for c in shipment.__mapper__.column_attrs}
    data.update(
        signature=signature_manifest(data),
        logger_ids=sorted(logger_ids or []),
        last_reading=last,
        hold_deadline=hold_deadline,
        expected_arrival=state.expected_arrival if state else None,
        margin_h=state.margin_h if state else None,
        at_risk=bool(state and state.at_risk)
        or forecast_at_risk(shipment, forecast, risk_probability),
        stability_budget_used_s=used,
        stability_budget_left_s=max(budget_s - used, 0.0),
        stability_budget_s=budget_s,
        projected_breach_at=state.projected_breach_at if state else None,
        open_alerts=state.open_alerts if state else 0,
        open_critical_alerts=state.open_critical_alerts if state else 0,
        reading_count=state.reading_count if state else 0,
        mkt_c=state.mkt_c if state else None,
        time_out_of_range_s=state.time_out_of_range_s if state else 0.0,
        time_unknown_s=state.time_unknown_s if state else 0.0,
        min_c=state.min_c if state else None,
        max_c=state.max_c if state else None,
        mean_c=state.mean_c if state else None,
        **forecast_dict(forecast),
    )
    return data


async def shipment_events(session: AsyncSession, shipment_id: uuid.UUID) -> list[ShipmentEvent]:
    return list(
        (
            await session.scalars(
                select(ShipmentEvent)
                .where(ShipmentEvent.shipment_id == shipment_id)
                .order_by(ShipmentEvent.at, ShipmentEvent.recorded_at)
            )
        ).all()
    )


