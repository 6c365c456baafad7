"""Mail outbox: one mail_deliveries row per (recipient, notified alert event), written in the event's
transaction next to its webhook rows, so nothing is mailed before (or without) the commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.mail.compose import Notice, notice_to_json, subject
from app.core.models import (
    Alert,
    AlertEvent,
    MailDelivery,
    Product,
    Shipment,
    ShipmentState,
    User,
    utcnow,
)
from app.core.models.alerts import SEVERITIES
from app.core.security import Principal

# NOTIFY channel the mail delivery loop LISTENs on (delivered at commit).
CHANNEL = "coldchain_mail"
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass(frozen=True, slots=True)
class Recipient:
    """An opted-in, enabled user: who sees what (the API's rule) and from which severity on."""

    id: uuid.UUID
    email: str
    principal: Principal
    min_severity: str

    def wants(self, severity: str, origin: uuid.UUID, destination: uuid.UUID) -> bool:
        return (_RANK.get(severity, -1) >= _RANK.get(self.min_severity, len(_RANK))
                and self.principal.sees(origin, destination))


def notified(event_type: str, data: dict[str, Any] | None) -> tuple[str, str | None] | None:
    """(mailed event, previous severity) for the events people are mailed about: an alert opened,
    escalated, or its severity raised (an `updated` event whose changes raise the severity)."""
    if event_type in ("opened", "escalated"):
        return event_type, None
    change = ((data or {}).get("changes") or {}).get("severity") if event_type == "updated" else None
    if isinstance(change, list) and len(change) == 2 and \
            _RANK.get(change[1], -1) > _RANK.get(change[0], len(_RANK)):
        return "severity_raised", change[0]
    return None


async def recipients(session: AsyncSession) -> list[Recipient]:
    rows = await session.execute(
        select(User.id, User.email, User.role, User.site_id, User.notify_min_severity)
        .where(User.notify_email.is_(True), User.disabled.is_(False))
        .order_by(User.id)
    )
    return [Recipient(r.id, r.email, Principal(actor=r.email, role=r.role, site_id=r.site_id),
                      r.notify_min_severity) for r in rows]


def _notice(event: str, previous: str | None, severity: str, row: Any) -> Notice:
    alert: Alert = row.Alert
    budget = row.stability_budget_s
    used = row.stability_budget_used_s
    return Notice(
        event=event, shipment_id=str(alert.shipment_id), kind=alert.kind, severity=severity,
        previous_severity=previous, reference=row.reference, message=alert.message,
        condition_since=alert.condition_since, retroactive=alert.retroactive, peak_c=alert.peak_c,
        temp_min_c=row.temp_min_c, temp_max_c=row.temp_max_c, critical_min_c=row.critical_min_c,
        critical_max_c=row.critical_max_c, hold_deadline=row.hold_deadline,
        expected_arrival=row.expected_arrival, margin_h=row.margin_h,
        budget_left_s=max(0.0, budget - used) if budget is not None and used is not None else None,
        projected_breach_at=row.projected_breach_at,
    )


async def enqueue_many(
    session: AsyncSession, events: Sequence[AlertEvent], *, now: datetime | None = None
) -> int:
    """Queue a mail for every opted-in user who may see the shipment, for each notified event at or
    above the user's minimum severity; in the caller's transaction (never commits). Rows queued."""
    chosen = [(e, m) for e in events if (m := notified(e.type, e.data)) is not None]
    if not chosen:
        return 0
    people = await recipients(session)
    if not people:
        return 0
    await session.flush()  # event ids, and the alerts' pending changes
    rows = await session.execute(
        select(Alert, Shipment.reference, Shipment.origin_site_id, Shipment.destination_site_id,
               Product.temp_min_c, Product.temp_max_c, Product.critical_min_c,
               Product.critical_max_c, Product.stability_budget_s,
               ShipmentState.stability_budget_used_s, ShipmentState.hold_deadline,
               ShipmentState.expected_arrival, ShipmentState.margin_h,
               ShipmentState.projected_breach_at)
        .join(Shipment, Shipment.id == Alert.shipment_id)
        .join(Product, Product.id == Shipment.product_id)
        .outerjoin(ShipmentState, ShipmentState.shipment_id == Shipment.id)
        .where(Alert.id.in_({e.alert_id for e, _ in chosen}))
    )
    facts = {r.Alert.id: r for r in rows}
    now = now or utcnow()
    values = []
    for event, (kind, previous) in chosen:
        row = facts[event.alert_id]
        severity = (event.data or {}).get("severity") or row.Alert.severity
        to = [p for p in people
              if p.wants(severity, row.origin_site_id, row.destination_site_id)]
        if not to:
            continue
        notice = _notice(kind, previous, severity, row)
        stored, title = notice_to_json(notice), subject(notice)
        values += [{
            "id": uuid.uuid4(), "user_id": p.id, "alert_event_id": event.id,
            "alert_id": event.alert_id, "event": kind, "recipient": p.email, "subject": title,
            "notice": stored, "state": "pending", "attempts": 0, "scheduled_at": now,
            "next_attempt_at": now,
        } for p in to]
    if values:
        await session.execute(insert(MailDelivery), values)
        await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
    return len(values)
