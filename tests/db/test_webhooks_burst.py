"""A burst of 10 000 alert events drains through the delivery loop with bounded concurrency."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
from prometheus_client import REGISTRY
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.webhooks.delivery import run_delivery
from alerts.webhooks.outbox import enqueue_many
from app.core.models import Alert, AlertEvent, WebhookDelivery
from app.core.settings import Settings
from simulators.receiver import Receiver
from tests import factories
from tests.webhooks_support import open_alert, shipment, subscribe

EVENTS = 10_000
PER_ENDPOINT = 8


def _delivered_total() -> float:
    value = REGISTRY.get_sample_value("coldchain_webhook_deliveries_total", {"outcome": "delivered"})
    return value or 0.0


async def _burst(db: AsyncSession, shipment_id: uuid.UUID) -> None:
    """10 000 alerts with one event each, queued through the outbox in one transaction."""
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


async def test_ten_thousand_events_drain_with_bounded_concurrency(
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
            "webhook_timeout_s": 5.0,
        })
        started = time.perf_counter()
        worker = asyncio.create_task(run_delivery(config, stop))
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


async def test_latency_at_rest_commit_to_receiver(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    """NOTIFY wakes the worker: an event committed at rest reaches the site well under a second."""
    async with Receiver() as receiver:
        origin = await factories.site(client, "Leiden CTU", "NL")
        destination = await factories.site(client, "Boston infusion centre", "US")
        ship = await shipment(client, origin, destination, "SHP-LATENCY")
        receiver.secrets.append((await subscribe(client, receiver.url()))["secret"])
        stop = asyncio.Event()
        worker = asyncio.create_task(run_delivery(settings, stop))
        await asyncio.sleep(0.5)  # started and listening
        latencies = []
        try:
            for i in range(30):
                await open_alert(db, ship["id"], kind="shock", state="resolved")  # commits
                committed = time.monotonic()
                await receiver.wait_delivered(i + 1, within_s=5)
                latencies.append(receiver.requests[-1].at - committed)
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            await asyncio.wait_for(worker, 30)
    latencies.sort()
    print(f"\ncommit → receiver: p50 {latencies[14] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
    assert latencies[14] < 0.3  # a 1 s poll alone would give ~0.5 s
    assert latencies[-1] < 2.0
