"""Webhook test helpers: shipments via the API, alerts and their events written as the engine would."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alerts.webhooks.delivery import DeliveryConfig, Limits, _deliver_due, make_client
from alerts.webhooks.outbox import enqueue_deliveries
from app.core.db import make_sessionmaker
from app.core.models import Alert, AlertEvent
from tests import factories

T0 = factories.T0
# The production timeouts (10 s an attempt): an attempt expected to succeed must not time out on a
# loaded machine (a failed attempt is retried minutes later, outside the test).
PATIENT = DeliveryConfig(allow_private=True)
# Only for an attempt that is meant to time out against a stalling receiver (which holds the request
# far longer). Not shorter: the request must be on the wire before the timeout, even under load.
FAST = DeliveryConfig(timeout_s=2.0, connect_timeout_s=2.0, allow_private=True)


def spec_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks, written from the spec: base64(HMAC-SHA256(key, "{id}.{ts}.{body}"))."""
    key = base64.b64decode(secret.split("_", 1)[1])
    mac = hmac.new(key, msg_id.encode() + b"." + timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


async def shipment(
    client: httpx.AsyncClient, origin: str, destination: str, reference: str
) -> dict[str, Any]:
    """A shipment between two existing sites (each call makes its own lane and profiles)."""
    body = {
        "reference": reference,
        "lane_id": await factories.lane(client, origin, destination, name=f"lane {reference}"),
        "product_id": await factories.refrigerated_product(client, name=f"product {reference}"),
        "packaging_id": await factories.packaging(client),
        "logger_ids": [await factories.logger(client, f"LOG-{reference}")],
        "packed_at": T0.isoformat(),
    }
    return await factories.post(client, "/shipments", body)


async def subscribe(client: httpx.AsyncClient, url: str, **over: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/webhooks", json={"url": url, **over})
    assert response.status_code == 201, response.text
    return response.json()


async def open_alert(
    session: AsyncSession, shipment_id: str | uuid.UUID, *, kind: str = "temperature_high",
    severity: str = "warning", state: str = "open",
) -> tuple[Alert, AlertEvent]:
    """An alert and its `opened` event, queued for delivery in the same transaction (committed)."""
    alert = Alert(
        shipment_id=uuid.UUID(str(shipment_id)), kind=kind, severity=severity, state=state,
        opened_at=T0 + timedelta(hours=2), condition_since=T0 + timedelta(hours=1),
        retroactive=False, message=f"{kind} on test shipment",
    )
    session.add(alert)
    await session.flush()
    event = await add_event(session, alert, "opened")
    return alert, event


async def add_event(
    session: AsyncSession, alert: Alert, type_: str, *, commit: bool = True
) -> AlertEvent:
    event = AlertEvent(alert_id=alert.id, type=type_, actor="engine", data={"peak_c": 9.5})
    session.add(event)
    await session.flush()
    await enqueue_deliveries(session, event)
    if commit:
        await session.commit()
    return event


async def deliver(
    engine: AsyncEngine, now: datetime | None = None, *, config: DeliveryConfig = PATIENT,
    limits: Limits | None = None, jitter: float = 0.5,
) -> int:
    """One delivery cycle with an injected clock (jitter 0.5 → the nominal backoff exactly)."""
    async with make_client(config) as http:
        return await _deliver_due(
            make_sessionmaker(engine), http, now or datetime.now(UTC), config=config,
            limits=limits, jitter=lambda: jitter,
        )


async def many_opened_events(db: AsyncSession, shipment_id: str, n: int) -> list[AlertEvent]:
    """`n` alerts of one shipment, each with an `opened` event (flushed, not yet enqueued)."""
    alerts = [
        Alert(shipment_id=uuid.UUID(shipment_id), kind="shock", severity="info", state="resolved",
              opened_at=factories.T0, condition_since=factories.T0)
        for _ in range(n)
    ]
    db.add_all(alerts)
    await db.flush()
    events = [AlertEvent(alert_id=a.id, type="opened", data={}) for a in alerts]
    db.add_all(events)
    return events
