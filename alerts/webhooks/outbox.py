"""Transactional outbox: webhook_deliveries rows for an alert event, written in the event's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import Alert, AlertEvent, Shipment, WebhookDelivery, WebhookSubscription, utcnow
from app.core.models.alerts import SEVERITIES

# NOTIFY channel the delivery workers LISTEN on (delivered at commit, so only committed rows wake them).
CHANNEL = "coldchain_webhooks"
_RANK = {s: i for i, s in enumerate(SEVERITIES)}
_CHUNK = 5000
_ALERT_FIELDS = (
    "id", "shipment_id", "kind", "severity", "state", "opened_at", "condition_since", "retroactive",
    "resolved_at", "message", "details", "peak_c", "occurrences", "last_evidence_at",
    "severity_since", "reopened_at", "escalated_at", "acknowledged_at", "acknowledged_by",
    "ack_comment", "resolved_by", "resolution",
)


@dataclass(frozen=True, slots=True)
class Target:
    """The filtering part of a subscription."""

    id: uuid.UUID
    site_id: uuid.UUID | None
    kinds: tuple[str, ...] | None
    min_severity: str


def matches(
    target: Target, *, kind: str, severity: str, origin_site_id: uuid.UUID,
    destination_site_id: uuid.UUID,
) -> bool:
    """Site scope (a site hears about shipments from or to it), kinds filter, minimum severity."""
    if target.site_id is not None and target.site_id not in (origin_site_id, destination_site_id):
        return False
    if target.kinds and kind not in target.kinds:
        return False
    return _RANK.get(severity, len(_RANK)) >= _RANK.get(target.min_severity, 0)


def webhook_id_for(delivery_id: uuid.UUID) -> str:
    """The Standard Webhooks message id, fixed at enqueue, identical on every retry."""
    return f"msg_{delivery_id.hex}"


def event_type(event: AlertEvent) -> str:
    return f"alert.{event.type}"


def alert_data(alert: Alert, reference: str) -> dict[str, Any]:
    """The alert as GET /alerts shows it, plus its shipment's id and reference."""
    data = {name: getattr(alert, name) for name in _ALERT_FIELDS}
    data["shipment"] = {"id": alert.shipment_id, "reference": reference}
    return data


def event_body(event: AlertEvent, alert: Alert, reference: str) -> bytes:
    """The exact bytes that are signed and sent, on every attempt."""
    data = alert_data(alert, reference)
    data["event"] = {
        "id": event.id, "type": event.type, "at": event.at, "actor": event.actor,
        "comment": event.comment, "data": event.data,
    }
    payload = {"type": event_type(event), "timestamp": event.at, "data": data}
    # default=str: asyncpg's UUID subclass is not orjson's native uuid.UUID.
    return orjson.dumps(payload, default=str, option=orjson.OPT_UTC_Z)


async def _targets(session: AsyncSession) -> list[Target]:
    rows = await session.execute(
        select(
            WebhookSubscription.id, WebhookSubscription.site_id, WebhookSubscription.kinds,
            WebhookSubscription.min_severity,
        ).where(WebhookSubscription.enabled.is_(True))
    )
    return [Target(r.id, r.site_id, tuple(r.kinds) if r.kinds else None, r.min_severity) for r in rows]


async def enqueue_deliveries(session: AsyncSession, event: AlertEvent) -> int:
    """Queue `event` (added to `session`, flushed or not) for every matching enabled subscription,
    in the caller's transaction; returns the rows queued. Never commits."""
    return await enqueue_many(session, [event])


async def enqueue_event_ids(session: AsyncSession, event_ids: Sequence[int]) -> int:
    """The same for alert_events rows written with Core (by id), e.g. a bulk INSERT … RETURNING id."""
    events = list(await session.scalars(select(AlertEvent).where(AlertEvent.id.in_(list(event_ids)))))
    return await enqueue_many(session, sorted(events, key=lambda e: e.id))


async def enqueue_many(
    session: AsyncSession, events: Sequence[AlertEvent], *, now: datetime | None = None
) -> int:
    """`enqueue_deliveries` for many events at once (a backfill, a burst): a few statements in all."""
    if not events:
        return 0
    await session.flush()  # event ids and timestamps, and the alerts' pending changes
    targets = await _targets(session)
    if not targets:
        return 0
    now = now or utcnow()
    queued = 0
    for start in range(0, len(events), _CHUNK):
        chunk = events[start:start + _CHUNK]
        alert_ids = list({e.alert_id for e in chunk})
        rows = await session.execute(
            select(Alert, Shipment.reference, Shipment.origin_site_id, Shipment.destination_site_id)
            .join(Shipment, Shipment.id == Alert.shipment_id)
            .where(Alert.id.in_(alert_ids))
        )
        alerts = {r[0].id: r for r in rows}
        values = []
        for event in chunk:
            alert, reference, origin, destination = alerts[event.alert_id]
            chosen = [
                t for t in targets
                if matches(t, kind=alert.kind, severity=alert.severity, origin_site_id=origin,
                           destination_site_id=destination)
            ]
            if not chosen:
                continue
            body = event_body(event, alert, reference)
            for target in chosen:
                delivery_id = uuid.uuid4()
                values.append({
                    "id": delivery_id, "subscription_id": target.id, "alert_event_id": event.id,
                    "alert_id": event.alert_id, "webhook_id": webhook_id_for(delivery_id),
                    "event_type": event_type(event), "body": body, "state": "pending",
                    "attempts": 0, "scheduled_at": now, "next_attempt_at": now,
                })
        if values:
            await session.execute(insert(WebhookDelivery), values)
            queued += len(values)
    if queued:
        await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
    return queued
