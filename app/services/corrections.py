"""Corrections of recorded custody events by a coordinator: a new time, or void; with a reason."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit
from app.core.errors import Conflict, NotFound
from app.core.handoff import enqueue_evaluation
from app.core.models import ShipmentEvent, utcnow
from app.core.security import Principal
from app.schemas.shipments import EventCorrectionIn
from app.services import custody, timeline
from app.services.reference import snapshot
from app.services.shipments import get_visible_shipment


async def correct_event(
    session: AsyncSession, principal: Principal, shipment_id: uuid.UUID, event_id: uuid.UUID,
    data: EventCorrectionIn,
) -> ShipmentEvent:
    """Move an event to another time or void it; the chain must stay consistent, the record
    (which readings are the shipment's) follows, and the audit trail keeps before and after."""
    shipment = await get_visible_shipment(session, principal, shipment_id, for_update=True)
    chain, events = await custody.load_chain(session, shipment)
    index = next((i for i, e in enumerate(events) if e.id == event_id), None)
    if index is None:
        other = await session.scalar(select(ShipmentEvent).where(
            ShipmentEvent.id == event_id, ShipmentEvent.shipment_id == shipment.id))
        if other is None:
            raise NotFound("shipment event", event_id)
        raise Conflict("the event was voided: a voided event is not corrected again", field="void")
    if shipment.release_decision is not None:
        raise Conflict(f"the shipment was {shipment.release_decision} by {shipment.released_by}: "
                       "its custody chain is closed", field="at")
    event, now = events[index], utcnow()
    before = {"event": snapshot(event), "shipment": snapshot(shipment)}
    try:
        if data.void:
            _, result = timeline.void(chain, index, now=now)
        else:
            assert data.at is not None  # the schema asks for exactly one of `at` and `void`
            _, result = timeline.retime(chain, index, data.at, now=now)
    except timeline.TimelineError as exc:
        raise custody.problem(exc) from exc
    since = min(event.at, data.at or event.at)
    if data.void:
        event.voided_at = now
    else:
        event.original_at = event.original_at or event.at
        event.at = data.at  # type: ignore[assignment]
    event.corrected_by, event.corrected_at, event.correction_reason = principal.actor, now, data.reason
    await custody.apply_custody(session, shipment, result)
    await session.flush()
    await session.refresh(shipment)
    after: dict[str, Any] = {"event": snapshot(event), "shipment": snapshot(shipment)}
    await audit.record(
        session, principal, action=f"event.{event.type}.{'voided' if data.void else 'corrected'}",
        entity_type="shipment", entity_id=shipment.id, before=before, after=after,
        reason=data.reason,
    )
    await enqueue_evaluation(session, shipment.id, since)
    return event
