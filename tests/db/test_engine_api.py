"""The alert API over engine-raised alerts: list, acknowledge, resolve, scoping, audit, outbox."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.models import AlertEvent, AuditRecord, WebhookDelivery
from tests.db.engine_support import Clock, alerts_of, at, count, round_, store
from tests.factories import T0, shipment_setup, site

API = "/api/v1"


async def _critical(client: httpx.AsyncClient, engine: AsyncEngine) -> tuple[str, str]:
    """A shipment with a live critical temperature alert; (shipment id, alert id)."""
    shipment = await shipment_setup(client, departed_at=T0.isoformat(),
                                    product={"critical_max_c": 15.0})
    await store(engine, shipment["id"], "LOG-1", [(0, 5.0), (5, 16.0), (10, 16.5)])
    await round_(engine, Clock(at(11)))
    alerts = (await client.get(f"{API}/alerts", params={"kind": "temperature_critical"})).json()
    (alert,) = alerts["items"]
    return shipment["id"], alert["id"]


async def _key(client: httpx.AsyncClient, role: str, site_id: str | None = None) -> dict[str, str]:
    body = {"role": role, **({"site_id": site_id} if site_id else {})}
    response = await client.post(f"{API}/api-keys", json=body)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['key']}"}


@pytest.fixture
async def coord(client: httpx.AsyncClient) -> dict[str, str]:
    """A coordinator's key: acknowledging and resolving are never the admin's decisions."""
    return await _key(client, "coordinator")


def _actor(headers: dict[str, str]) -> str:
    return "key:" + headers["Authorization"].split("_")[1]


async def test_list_filters_and_paginates_newest_first(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    sid, _ = await _critical(client, engine)
    everything = (await client.get(f"{API}/alerts")).json()["items"]
    assert {a["kind"] for a in everything} == {"temperature_high", "temperature_critical"}
    item = everything[0]
    for field in ("id", "shipment_id", "kind", "severity", "state", "opened_at",
                  "condition_since", "retroactive", "resolved_at"):
        assert field in item
    assert item["shipment_reference"] == "SHP-1" and item["condition_since"] == "2026-11-20T08:05:00Z"
    page = (await client.get(f"{API}/alerts", params={"limit": 1})).json()
    rest = (await client.get(f"{API}/alerts", params={"limit": 1, "cursor": page["next_cursor"]})
            ).json()
    assert [page["items"][0]["id"], rest["items"][0]["id"]] == [a["id"] for a in everything]
    assert rest["next_cursor"] is None
    assert (await client.get(f"{API}/alerts", params={"state": "resolved"})).json()["items"] == []
    assert len((await client.get(f"{API}/alerts", params={"state": "live",
                                                          "shipment_id": sid})).json()["items"]) == 2
    bad = await client.get(f"{API}/alerts", params={"kind": "volcano"})
    assert bad.status_code == 422
    forged = await client.get(f"{API}/alerts", params={"cursor": "bm90IGEgY3Vyc29y"})
    assert forged.status_code == 422
    assert forged.headers["content-type"].startswith("application/problem+json")


async def test_acknowledging_a_critical_alert_requires_a_comment(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession, coord: dict[str, str],
) -> None:
    _, alert_id = await _critical(client, engine)
    for body in ({}, {"comment": "   "}):
        response = await client.post(f"{API}/alerts/{alert_id}/ack", json=body, headers=coord)
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        (error,) = response.json()["errors"]
        assert error["field"] == "comment" and "requires a comment" in error["message"]
    response = await client.post(f"{API}/alerts/{alert_id}/ack",
                                 json={"comment": "Courier told to re-ice at the hub"}, headers=coord)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "acknowledged" and body["ack_comment"] == "Courier told to re-ice at the hub"
    assert body["acknowledged_by"] == _actor(coord)
    again = await client.post(f"{API}/alerts/{alert_id}/ack", json={"comment": "again"}, headers=coord)
    assert again.status_code == 409
    events = (await db.scalars(select(AlertEvent).where(
        AlertEvent.alert_id == uuid.UUID(alert_id)).order_by(AlertEvent.id))).all()
    assert [(e.type, e.actor) for e in events] == [("opened", "system"),
                                                   ("acknowledged", _actor(coord))]
    audit = (await db.scalars(select(AuditRecord).where(
        AuditRecord.entity_id == alert_id, AuditRecord.action == "alert.acknowledged"))).one()
    assert audit.actor == _actor(coord) and audit.reason == "Courier told to re-ice at the hub"
    assert audit.before["state"] == "open" and audit.after["state"] == "acknowledged"
    detail = (await client.get(f"{API}/alerts/{alert_id}")).json()
    assert [e["type"] for e in detail["events"]] == ["opened", "acknowledged"]


async def test_a_warning_may_be_acknowledged_without_a_comment(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession, coord: dict[str, str],
) -> None:
    await _critical(client, engine)
    (warning,) = (await client.get(f"{API}/alerts", params={"kind": "temperature_high"})).json()[
        "items"]
    response = await client.post(f"{API}/alerts/{warning['id']}/ack", json={}, headers=coord)
    assert response.status_code == 200 and response.json()["ack_comment"] is None


async def test_manual_resolution_needs_a_reason_and_sticks(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession, coord: dict[str, str],
) -> None:
    sid, alert_id = await _critical(client, engine)
    missing = await client.post(f"{API}/alerts/{alert_id}/resolve", json={}, headers=coord)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "comment"
    response = await client.post(f"{API}/alerts/{alert_id}/resolve",
                                 json={"comment": "Sensor faulty: probe came loose in transit"},
                                 headers=coord)
    assert response.status_code == 200
    assert response.json()["state"] == "resolved" and response.json()["resolved_by"] == _actor(coord)
    assert (await client.post(f"{API}/alerts/{alert_id}/resolve",
                              json={"comment": "twice"}, headers=coord)).status_code == 409
    assert (await client.post(f"{API}/alerts/{alert_id}/ack",
                              json={"comment": "late"}, headers=coord)).status_code == 409
    # The excursion goes on, but the person's decision is not overridden by a new alert.
    await store(engine, sid, "LOG-1", [(15, 16.2)])
    await round_(engine, Clock(at(16)))
    critical = [a for a in await alerts_of(db, sid) if a.kind == "temperature_critical"]
    assert [a.state for a in critical] == ["resolved"]
    assert await count(db, AuditRecord, entity_id=alert_id, action="alert.resolved") == 1


async def test_roles_and_site_scope(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    _, alert_id = await _critical(client, engine)
    elsewhere = await site(client, "Madrid depot", "ES")
    outsider = await _key(client, "site", elsewhere)
    assert (await client.get(f"{API}/alerts", headers=outsider)).json()["items"] == []
    assert (await client.get(f"{API}/alerts/{alert_id}", headers=outsider)).status_code == 404
    assert (await client.post(f"{API}/alerts/{alert_id}/ack", json={"comment": "x"},
                              headers=outsider)).status_code == 404
    shipment = (await client.get(f"{API}/alerts/{alert_id}")).json()["shipment_id"]
    origin = (await client.get(f"{API}/shipments/{shipment}")).json()["origin_site_id"]
    insider = await _key(client, "site", origin)
    assert len((await client.get(f"{API}/alerts", headers=insider)).json()["items"]) == 2
    assert (await client.post(f"{API}/alerts/{alert_id}/resolve", json={"comment": "x"},
                              headers=insider)).status_code == 403
    ack = await client.post(f"{API}/alerts/{alert_id}/ack", json={"comment": "on it"},
                            headers=insider)
    assert ack.status_code == 200
    assert (await client.get(f"{API}/alerts")).status_code == 200
    anonymous = await client.get(f"{API}/alerts", headers={"Authorization": ""})
    assert anonymous.status_code == 401


async def test_every_transition_is_queued_for_subscribed_webhooks(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession, coord: dict[str, str],
) -> None:
    hook = await client.post(f"{API}/webhooks", json={"url": "http://127.0.0.1:9/hook"})
    assert hook.status_code == 201, hook.text
    _, alert_id = await _critical(client, engine)
    await client.post(f"{API}/alerts/{alert_id}/ack", json={"comment": "seen"}, headers=coord)
    types = (await db.scalars(select(WebhookDelivery.event_type).where(
        WebhookDelivery.alert_id == uuid.UUID(alert_id)).order_by(WebhookDelivery.scheduled_at,
                                                                   WebhookDelivery.event_type))
             ).all()
    assert sorted(types) == ["alert.acknowledged", "alert.opened"]
