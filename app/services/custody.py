"""A shipment's custody chain in the database: its events, their corrections, where its record ends.

The record of a shipment is a view: the readings of its loggers inside their assignment windows
[assigned_from, assigned_until), the window ending at receipt. `readings.shipment_id` caches that
view for the evaluation and the reports; when a receipt moves (a correction) the windows move and
the cache is recomputed over the readings concerned. No reading is ever deleted or changed.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ScalarSelect, and_, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.core.errors import Conflict, InvalidField
from app.core.models import Lane, Logger, Reading, Shipment, ShipmentEvent, ShipmentLogger
from app.services.timeline import Chain, Custody, Step, TimelineError


async def load_chain(
    session: AsyncSession, shipment: Shipment
) -> tuple[Chain, list[ShipmentEvent]]:
    """The chain as recorded (voided events left out) and its event rows, in chain order."""
    rows = list(await session.scalars(
        select(ShipmentEvent).where(ShipmentEvent.shipment_id == shipment.id)
        .order_by(ShipmentEvent.at, ShipmentEvent.recorded_at)))
    live = [e for e in rows if e.voided_at is None]
    # A departure given at registration has no event; one recorded as an event (even a voided
    # one) was not given at registration ('departed' follows 'packed' only).
    registered_departure = None if any(e.type == "departed" for e in rows) else shipment.departed_at
    steps = tuple(Step(e.type, e.at, str(e.lane_id) if e.lane_id else None) for e in live)
    chain = Chain(shipment.packed_at, registered_departure, steps, str(shipment.planned_lane_id))
    return chain, live


async def latest_reading(session: AsyncSession, shipment_id: uuid.UUID) -> datetime | None:
    """Device time of the newest reading stored for the shipment (ix_readings_shipment_ts)."""
    latest: datetime | None = await session.scalar(
        select(func.max(Reading.ts)).where(Reading.shipment_id == shipment_id))
    return latest


def problem(exc: TimelineError) -> Conflict | InvalidField:
    """The API's answer to an event that does not fit the chain."""
    if exc.conflict:
        return Conflict(exc.message, field=exc.field)
    return InvalidField(exc.field, exc.message)


async def apply_custody(session: AsyncSession, shipment: Shipment, custody: Custody) -> None:
    """Status, custody times, the lane in force (and so the destination site) and the hold
    clock's restart from the chain; a moved receipt moves the record's end."""
    previous_end = shipment.received_at
    shipment.status = custody.status
    shipment.departed_at = custody.departed_at
    shipment.delivered_at = custody.delivered_at
    shipment.received_at = custody.received_at
    shipment.recharged_at = custody.recharged_at
    lane_id = uuid.UUID(custody.lane_id) if custody.lane_id else shipment.planned_lane_id
    if lane_id != shipment.lane_id:
        lane = await session.get(Lane, lane_id)
        if lane is None:
            raise InvalidField("lane_id", f"no such lane: {lane_id}")
        shipment.lane_id, shipment.destination_site_id = lane.id, lane.destination_site_id
    shipment.updated_at = func.now()
    if previous_end != custody.received_at:
        await move_record_end(session, shipment.id, previous_end, custody.received_at)


async def move_record_end(
    session: AsyncSession, shipment_id: uuid.UUID, old: datetime | None, new: datetime | None
) -> None:
    """End the shipment's logger assignments at `new` (None: still assigned) and recompute the
    shipment of every reading between the old and the new end."""
    logger_ids = list(await session.scalars(
        select(ShipmentLogger.logger_id).where(ShipmentLogger.shipment_id == shipment_id)))
    if not logger_ids:
        return
    # The lock ingest takes before it links a batch's readings (ingest/writer.py LOCK_LOGGERS):
    # a batch committed before us is relinked below; one after us links by the new windows.
    await session.execute(select(Logger.id).where(Logger.id.in_(logger_ids))
                          .order_by(Logger.id).with_for_update())
    if old is not None and (new is None or new > old):
        await _refuse_overlap(session, shipment_id, logger_ids, new)
    await session.execute(
        update(ShipmentLogger).where(ShipmentLogger.shipment_id == shipment_id)
        .values(assigned_until=new).execution_options(synchronize_session=False))
    low = min(t for t in (old, new) if t is not None)
    high = None if old is None or new is None else max(old, new)
    await relink(session, logger_ids, low, high)


async def _refuse_overlap(
    session: AsyncSession, shipment_id: uuid.UUID, logger_ids: list[str], new_end: datetime | None
) -> None:
    """A later end may not reach into another shipment's use of the same logger."""
    mine, other = aliased(ShipmentLogger), aliased(ShipmentLogger)
    clash = (await session.execute(
        select(other.logger_id, Shipment.reference, other.assigned_from)
        .join(mine, and_(mine.logger_id == other.logger_id, mine.shipment_id == shipment_id))
        .join(Shipment, Shipment.id == other.shipment_id)
        .where(other.shipment_id != shipment_id, other.logger_id.in_(logger_ids),
               or_(other.assigned_until.is_(None), other.assigned_until > mine.assigned_from),
               true() if new_end is None else other.assigned_from < new_end)
        .order_by(other.assigned_from).limit(1))).first()
    if clash is not None:
        raise Conflict(
            f"logger {clash.logger_id} is on shipment {clash.reference} from "
            f"{clash.assigned_from.isoformat()}: the record of this shipment cannot extend into it",
            field="at")


def assignment() -> ScalarSelect[uuid.UUID]:
    """The shipment a reading's logger was assigned to at its device time (NULL: none), as
    ingest links it (ingest/writer.py _ASSIGNMENT)."""
    return (
        select(ShipmentLogger.shipment_id)
        .where(ShipmentLogger.logger_id == Reading.logger_id,
               ShipmentLogger.assigned_from <= Reading.ts,
               or_(ShipmentLogger.assigned_until.is_(None),
                   Reading.ts < ShipmentLogger.assigned_until))
        .order_by(ShipmentLogger.assigned_from.desc()).limit(1).scalar_subquery()
    )


async def relink(
    session: AsyncSession, logger_ids: list[str], low: datetime, high: datetime | None
) -> None:
    """Recompute `readings.shipment_id` of these loggers' readings in [low, high) from the
    assignment windows (callers hold the loggers' lock)."""
    target = assignment()
    stmt = (update(Reading)
            .where(Reading.logger_id.in_(logger_ids), Reading.ts >= low,
                   Reading.shipment_id.is_distinct_from(target))
            .values(shipment_id=target).execution_options(synchronize_session=False))
    if high is not None:
        stmt = stmt.where(Reading.ts < high)
    await session.execute(stmt)
