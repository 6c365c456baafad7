"""Shipments: creation with logger assignment, custody/status events, and the summary rows."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.errors import Conflict, InvalidField, NotFound
from app.models import (
    EvaluationQueue,
    Lane,
    Logger,
    Packaging,
    Product,
    Reading,
    Shipment,
    ShipmentEvent,
    ShipmentLogger,
    ShipmentState,
)
from app.schemas.shipments import ShipmentEventIn, ShipmentIn
from app.security import Principal
from app.services.reference import require_exists, snapshot

# Which status each event may follow, and the status it leads to.
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "departed": (frozenset({"packed"}), "in_transit"),
    "customs_hold": (frozenset({"in_transit"}), "customs_hold"),
    "customs_released": (frozenset({"customs_hold"}), "in_transit"),
    "delivered": (frozenset({"in_transit", "customs_hold"}), "delivered"),
    "received": (frozenset({"delivered"}), "received"),
}
ACTIVE_STATUSES = ("packed", "in_transit", "customs_hold", "delivered")


async def enqueue_evaluation(session: AsyncSession, shipment_id: uuid.UUID, since: datetime) -> None:
    """Ask the evaluation engine to (re)judge a shipment from `since` (device time)."""
    stmt = insert(EvaluationQueue).values(shipment_id=shipment_id, dirty_from=since)
    stmt = stmt.on_conflict_do_update(
        index_elements=[EvaluationQueue.shipment_id],
        set_={"dirty_from": func.least(EvaluationQueue.dirty_from, stmt.excluded.dirty_from)},
    )
    await session.execute(stmt)
    await session.execute(select(func.pg_notify("coldchain_eval", str(shipment_id))))


async def create_shipment(
    session: AsyncSession, principal: Principal, data: ShipmentIn
) -> Shipment:
    lane = await session.get(Lane, data.lane_id)
    if lane is None:
        raise InvalidField("lane_id", f"no such lane: {data.lane_id}")
    await require_exists(session, Product, data.product_id, "product_id")
    await require_exists(session, Packaging, data.packaging_id, "packaging_id")
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
    shipment = await get_visible_shipment(session, principal, shipment_id, for_update=True)
    allowed_from, new_status = TRANSITIONS[data.type]
    if shipment.status not in allowed_from:
        raise Conflict(
            f"a '{data.type}' event cannot follow status '{shipment.status}'", field="type"
        )
    if data.at < shipment.packed_at:
        raise InvalidField("at", "must not be before the shipment was packed")
    before = snapshot(shipment)
    shipment.status = new_status
    if data.type == "departed":
        shipment.departed_at = data.at
    elif data.type == "delivered":
        shipment.delivered_at = data.at
    elif data.type == "received":
        shipment.received_at = data.at
        await _end_logger_assignments(session, shipment.id, data.at)
    shipment.updated_at = func.now()
    event = ShipmentEvent(
        shipment_id=shipment.id, type=data.type, at=data.at, note=data.note,
        recorded_by=principal.actor,
    )
    session.add(event)
    await session.flush()
    await session.refresh(shipment)
    await audit.record(
        session, principal, action=f"event.{data.type}", entity_type="shipment",
        entity_id=shipment.id, before=before, after=snapshot(shipment), reason=data.note,
    )
    await enqueue_evaluation(session, shipment.id, data.at)
    return event


async def _end_logger_assignments(
    session: AsyncSession, shipment_id: uuid.UUID, until: datetime
) -> None:
    # Ingest batches lock their loggers' rows before linking readings (ingest/writer.py): with the
    # same locks held here, a batch in flight either commits first (its readings after `until`
    # are unlinked below) or waits and links by the ended assignment.
    await session.execute(
        select(Logger.id)
        .where(Logger.id.in_(
            select(ShipmentLogger.logger_id).where(
                ShipmentLogger.shipment_id == shipment_id, ShipmentLogger.assigned_until.is_(None))
        ))
        .order_by(Logger.id)
        .with_for_update()
    )
    await session.execute(
        update(ShipmentLogger)
        .where(ShipmentLogger.shipment_id == shipment_id, ShipmentLogger.assigned_until.is_(None))
        .values(assigned_until=until)
    )
    # Readings after receipt are the logger's next life, not this shipment's record.
    await session.execute(
        update(Reading)
        .where(Reading.shipment_id == shipment_id, Reading.ts >= until)
        .values(shipment_id=None)
    )


def summary_select() -> Select[Any]:
    """Shipments joined with their maintained evaluation state (no reading scans)."""
    logger_ids = (
        select(func.array_agg(ShipmentLogger.logger_id))
        .where(ShipmentLogger.shipment_id == Shipment.id)
        .scalar_subquery()
    )
    return (
        select(Shipment, ShipmentState, Packaging.qualified_hold_h, Product.stability_budget_s,
               logger_ids.label("logger_ids"))
        .join(Packaging, Packaging.id == Shipment.packaging_id)
        .join(Product, Product.id == Shipment.product_id)
        .outerjoin(ShipmentState, ShipmentState.shipment_id == Shipment.id)
    )


def summary_dict(row: Any) -> dict[str, Any]:
    shipment, state, hold_h, budget_s, logger_ids = row
    used = state.stability_budget_used_s if state else 0.0
    last = None
    if state is not None and state.last_reading_ts is not None:
        last = {"ts": state.last_reading_ts, "temp_c": state.last_temp_c,
                "lat": state.last_lat, "lon": state.last_lon}
    hold_deadline = (
        state.hold_deadline if state and state.hold_deadline
        else shipment.packed_at + timedelta(hours=hold_h)
    )
    data = {c.key: getattr(shipment, c.key) for c in shipment.__mapper__.column_attrs}
    data.update(
        logger_ids=sorted(logger_ids or []),
        last_reading=last,
        hold_deadline=hold_deadline,
        expected_arrival=state.expected_arrival if state else None,
        margin_h=state.margin_h if state else None,
        at_risk=bool(state and state.at_risk),
        stability_budget_used_s=used,
        stability_budget_left_s=max(budget_s - used, 0.0),
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


