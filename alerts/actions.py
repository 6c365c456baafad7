"""What people do with alerts: acknowledge (a comment required when critical) and resolve.

Each action locks the alert row, records an alert event (with its webhook deliveries) and an
audit entry in the caller's transaction, and asks the engine to refresh the shipment's summary.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.transitions import AuditEntry, new_event, snapshot, write_audit
from alerts.webhooks import outbox
from app.core.errors import Conflict, InvalidField, NotFound
from app.core.handoff import enqueue_evaluation
from app.core.models import Alert, Shipment
from app.core.security import Principal

LIVE = ("open", "escalated", "acknowledged")


async def get_visible_alert(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID, *, for_update: bool = False
) -> tuple[Alert, Shipment]:
    """The alert and its shipment, or 404 (also when a site may not see the shipment)."""
    stmt = select(Alert, Shipment).join(Shipment, Shipment.id == Alert.shipment_id).where(
        Alert.id == alert_id)
    if for_update:
        stmt = stmt.with_for_update(of=Alert)
    row = (await session.execute(stmt)).first()
    if row is None or not principal.sees(row[1].origin_site_id, row[1].destination_site_id):
        raise NotFound("alert", alert_id)
    return row[0], row[1]


def _comment(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


async def acknowledge(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID, comment: str | None,
    *, now: datetime,
) -> Alert:
    alert, _shipment = await get_visible_alert(session, principal, alert_id, for_update=True)
    text = _comment(comment)
    if alert.state == "resolved":
        raise Conflict("a resolved alert cannot be acknowledged", field="state")
    if alert.state == "acknowledged":
        raise Conflict("the alert is already acknowledged", field="state")
    if alert.severity == "critical" and text is None:
        raise InvalidField("comment", "acknowledging a critical alert requires a comment")
    before = snapshot(alert)
    alert.state, alert.acknowledged_at, alert.acknowledged_by = "acknowledged", now, principal.actor
    alert.ack_comment = text
    await _record(session, principal, alert, "acknowledged", before, text, now)
    return alert


async def resolve(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID, comment: str | None,
    *, now: datetime,
) -> Alert:
    """Close an alert by hand (e.g. sensor lost or faulty): the reason is required."""
    alert, _shipment = await get_visible_alert(session, principal, alert_id, for_update=True)
    text = _comment(comment)
    if text is None:
        raise InvalidField("comment", "resolving an alert requires a reason")
    if alert.state == "resolved":
        raise Conflict("the alert is already resolved", field="state")
    before = snapshot(alert)
    alert.state, alert.resolved_at, alert.resolved_by = "resolved", now, principal.actor
    alert.resolution = text
    await _record(session, principal, alert, "resolved", before, text, now)
    return alert


async def _record(
    session: AsyncSession, principal: Principal, alert: Alert, type_: str,
    before: dict[str, object], comment: str | None, now: datetime,
) -> None:
    await session.flush()
    event = new_event(alert, type_, now, actor=principal.actor, comment=comment, reason=comment)
    session.add(event)
    await session.flush()
    await outbox.enqueue_deliveries(session, event)
    # The summary's open-alert counts follow at the engine's next pass.
    await enqueue_evaluation(session, alert.shipment_id, now)
    entry = AuditEntry(f"alert.{type_}", alert.id, dict(before), snapshot(alert), comment)
    await write_audit(session, [entry], principal)
