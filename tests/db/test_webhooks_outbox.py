"""The transactional outbox: which subscriptions get an alert event, with what bytes, atomically."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.webhooks.outbox import enqueue_event_ids, enqueue_many
from app.core.models import Alert, AlertEvent, WebhookDelivery
from tests import factories
from tests.webhooks_support import add_event, many_opened_events, open_alert, shipment, subscribe

URL = "http://127.0.0.1:9/hook"


async def _deliveries(db: AsyncSession) -> list[WebhookDelivery]:
    stmt = select(WebhookDelivery).order_by(WebhookDelivery.alert_event_id)
    return list(await db.scalars(stmt.execution_options(populate_existing=True)))


async def _two_shipments(client: httpx.AsyncClient) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    sites = {name: await factories.site(client, name, "NL") for name in ("A", "B", "C")}
    a_to_b = await shipment(client, sites["A"], sites["B"], "SHP-AB")
    c_to_a = await shipment(client, sites["C"], sites["A"], "SHP-CA")
    return sites, a_to_b, c_to_a


async def test_site_scope_kinds_and_severity_decide_who_gets_an_event(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    sites, a_to_b, c_to_a = await _two_shipments(client)
    subs = {
        "all": await subscribe(client, URL),
        "site_b": await subscribe(client, URL, site_id=sites["B"]),
        "site_c": await subscribe(client, URL, site_id=sites["C"]),
        "shock_only": await subscribe(client, URL, kinds=["shock"]),
        "critical_only": await subscribe(client, URL, min_severity="critical"),
        "disabled": await subscribe(client, URL, enabled=False),
    }
    await open_alert(db, a_to_b["id"], kind="temperature_high", severity="warning")
    await open_alert(db, c_to_a["id"], kind="shock", severity="critical")
    by_sub: dict[str, set[str]] = {name: set() for name in subs}
    names = {uuid.UUID(s["id"]): name for name, s in subs.items()}
    for d in await _deliveries(db):
        by_sub[names[d.subscription_id]].add(json.loads(d.body)["data"]["shipment"]["reference"])
    assert by_sub == {
        "all": {"SHP-AB", "SHP-CA"},
        "site_b": {"SHP-AB"},  # B is the destination of AB only
        "site_c": {"SHP-CA"},  # C is the origin of CA only
        "shock_only": {"SHP-CA"},
        "critical_only": {"SHP-CA"},
        "disabled": set(),
    }


async def test_body_is_the_alert_as_the_api_shows_it_with_a_stable_webhook_id(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    origin, destination = await factories.site(client, "A", "NL"), await factories.site(client, "B", "US")
    ship = await shipment(client, origin, destination, "SHP-BODY")
    await subscribe(client, URL)
    alert, event = await open_alert(db, ship["id"], kind="temperature_high", severity="warning")
    (delivery,) = await _deliveries(db)
    body = json.loads(delivery.body)
    assert body["type"] == "alert.opened" == delivery.event_type
    assert body["timestamp"].endswith("Z")
    data = body["data"]
    assert data["id"] == str(alert.id) and data["shipment_id"] == ship["id"]
    assert data["shipment"] == {"id": ship["id"], "reference": "SHP-BODY"}
    assert {k: data[k] for k in ("kind", "severity", "state", "retroactive", "resolved_at")} == {
        "kind": "temperature_high", "severity": "warning", "state": "open", "retroactive": False,
        "resolved_at": None,
    }
    assert data["opened_at"] == "2026-11-20T10:00:00Z"
    assert data["condition_since"] == "2026-11-20T09:00:00Z"
    assert data["event"]["id"] == event.id and data["event"]["type"] == "opened"
    assert delivery.webhook_id == f"msg_{delivery.id.hex}"
    assert (delivery.state, delivery.attempts, delivery.alert_id) == ("pending", 0, alert.id)
    # Every later transition of the alert is its own event with its own id.
    alert.state = "resolved"
    await add_event(db, alert, "resolved")
    first, second = await _deliveries(db)
    assert first.webhook_id != second.webhook_id
    assert json.loads(second.body)["type"] == "alert.resolved"
    assert json.loads(second.body)["data"]["state"] == "resolved"


async def test_rolled_back_transition_leaves_no_delivery(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    origin, destination = await factories.site(client, "A", "NL"), await factories.site(client, "B", "US")
    ship = await shipment(client, origin, destination, "SHP-RB")
    await subscribe(client, URL)
    alert, _ = await open_alert(db, ship["id"])
    alert.state = "acknowledged"
    await add_event(db, alert, "acknowledged", commit=False)
    assert await db.scalar(select(func.count()).select_from(WebhookDelivery)) == 2
    await db.rollback()
    assert await db.scalar(select(func.count()).select_from(WebhookDelivery)) == 1


async def test_many_events_are_queued_in_one_go(client: httpx.AsyncClient, db: AsyncSession) -> None:
    origin, destination = await factories.site(client, "A", "NL"), await factories.site(client, "B", "US")
    ship = await shipment(client, origin, destination, "SHP-MANY")
    await subscribe(client, URL)
    await subscribe(client, URL, site_id=origin)
    events = await many_opened_events(db, ship["id"], 300)
    assert await enqueue_many(db, events) == 600
    await db.commit()
    rows = await _deliveries(db)
    assert len(rows) == 600 and len({r.webhook_id for r in rows}) == 600


async def test_no_subscription_no_rows(client: httpx.AsyncClient, db: AsyncSession) -> None:
    origin, destination = await factories.site(client, "A", "NL"), await factories.site(client, "B", "US")
    ship = await shipment(client, origin, destination, "SHP-NONE")
    await open_alert(db, ship["id"])
    assert await _deliveries(db) == []


async def test_events_written_with_core_are_queued_by_id(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    origin, destination = await factories.site(client, "A", "NL"), await factories.site(client, "B", "US")
    ship = await shipment(client, origin, destination, "SHP-CORE")
    await subscribe(client, URL)
    alert = Alert(shipment_id=uuid.UUID(ship["id"]), kind="shock", severity="info",
                  opened_at=factories.T0, condition_since=factories.T0)
    db.add(alert)
    await db.flush()
    ids = (await db.scalars(
        insert(AlertEvent).returning(AlertEvent.id),
        [{"alert_id": alert.id, "type": t, "data": {}} for t in ("opened", "updated")],
    )).all()
    assert await enqueue_event_ids(db, ids) == 2
    await db.commit()
    assert [json.loads(d.body)["type"] for d in await _deliveries(db)] == ["alert.opened", "alert.updated"]
