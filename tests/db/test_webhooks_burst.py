"""Delivery: a burst of events drains with bounded concurrency; NOTIFY wakes it at rest."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
import uuid
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alerts.webhooks import delivery
from alerts.webhooks.outbox import CHANNEL, enqueue_many
from app.core.models import Alert, AlertEvent, WebhookDelivery
from app.core.settings import Settings
from simulators.receiver import Receiver
from tests import factories
from tests.waits import listeners, until
from tests.webhooks_support import open_alert, shipment, subscribe

# The suite drains 2 000; the throughput figure in README comes from 10 000 (WEBHOOK_BURST_EVENTS).
EVENTS = int(os.environ.get("WEBHOOK_BURST_EVENTS", "2000"))
PER_ENDPOINT = 8


def _delivered_total() -> float:
    value = REGISTRY.get_sample_value("coldchain_webhook_deliveries_total", {"outcome": "delivered"})
    return value or 0.0


async def _burst(db: AsyncSession, shipment_id: uuid.UUID) -> None:
    """EVENTS alerts with one event each, queued through the outbox in one transaction."""
    alert_ids = [uuid.uuid4() for _ in range(EVENTS)]
    await db.execute(insert(Alert), [
        {"id": a, "shipment_id": shipment_id, "kind": "shock", "severity": "warning",
         "state": "resolved", "opened_at": factories.T0, "condition_since": factories.T0,
         "retroactive": False}
        for a in alert_ids
    ])
    await db.execute(insert(AlertEvent), [{"alert_id": a, "type": "opened", "data": {}} for a in alert_ids])
    events = list(await db.scalars(select(AlertEvent)))
    assert await enqueue_many(db, events) == EVENTS
    await db.commit()


async def test_a_burst_of_events_drains_with_bounded_concurrency(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    async with Receiver(delay_s=0.002) as receiver:
        origin = await factories.site(client, "Leiden CTU", "NL")
        destination = await factories.site(client, "Boston infusion centre", "US")
        ship = await shipment(client, origin, destination, "SHP-BURST")
        receiver.secrets.append((await subscribe(client, receiver.url()))["secret"])
        await _burst(db, uuid.UUID(ship["id"]))
        before = _delivered_total()

        stop = asyncio.Event()
        config = settings.model_copy(update={
            "webhook_concurrency": 16, "webhook_endpoint_concurrency": PER_ENDPOINT,
        })
        started = time.perf_counter()
        worker = asyncio.create_task(delivery.run_delivery(config, stop))
        try:
            await receiver.wait_delivered(EVENTS, within_s=120)
        finally:
            elapsed = time.perf_counter() - started
            stop.set()
            await asyncio.wait_for(worker, 30)
        print(f"\n{EVENTS} webhooks in {elapsed:.1f} s = {EVENTS / elapsed:.0f}/s, "
              f"max {receiver.max_in_flight} in flight at the receiver")

    assert len(receiver.requests) == EVENTS  # each exactly once
    assert 2 <= receiver.max_in_flight <= PER_ENDPOINT
    states = await db.execute(
        select(WebhookDelivery.state, func.count()).group_by(WebhookDelivery.state)
    )
    assert dict(states.all()) == {"delivered": EVENTS}
    assert _delivered_total() - before == EVENTS


async def test_notify_wakes_the_delivery_loops_at_rest(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no poll in time, only the outbox's NOTIFY can get an event committed at rest out.

    How soon it arrives is measured by benchmarks/wakeups.py, not asserted here.
    """
    configured = delivery.DeliveryConfig.from_settings
    monkeypatch.setattr(delivery.DeliveryConfig, "from_settings", classmethod(
        lambda _cls, s: dataclasses.replace(configured(s), poll_s=3600.0)))
    claims: list[int] = []
    claim = delivery._deliver_due

    async def counted(*args: Any, **kwargs: Any) -> int:
        claims.append(await claim(*args, **kwargs))
        return claims[-1]

    monkeypatch.setattr(delivery, "_deliver_due", counted)
    async with Receiver() as receiver:
        origin = await factories.site(client, "Leiden CTU", "NL")
        destination = await factories.site(client, "Boston infusion centre", "US")
        ship = await shipment(client, origin, destination, "SHP-AT-REST")
        receiver.secrets.append((await subscribe(client, receiver.url()))["secret"])
        listening = await listeners(engine, CHANNEL)
        stop = asyncio.Event()
        worker = asyncio.create_task(delivery.run_delivery(settings, stop))
        try:
            async def at_rest() -> bool:  # listening, and every loop found nothing and waits
                loops = delivery.DeliveryConfig.from_settings(settings).loops
                return await listeners(engine, CHANNEL) > listening and len(claims) >= loops

            await until(at_rest, "the delivery loops listening and idle")
            for i in range(3):
                await open_alert(db, ship["id"], kind="shock", state="resolved")  # commits
                await receiver.wait_delivered(i + 1, within_s=30)
        finally:
            stop.set()
            await asyncio.wait_for(worker, 30)
    assert len(receiver.requests) == 3
