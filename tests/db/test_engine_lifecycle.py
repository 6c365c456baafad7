"""Alert lifecycle through the real engine: every visible change is an event, an audit record
and a webhook carrying the new values; a new episode needs a person again."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alerts.rules import EvalConfig
from app.api.routes.alerts import AlertOut
from app.core.models import Alert, AlertEvent, AuditRecord, WebhookDelivery
from tests.api.keys import bearer, make_key
from tests.db.engine_support import Clock, alerts_of, at, round_, store
from tests.factories import T0, shipment_setup
from tests.webhooks_support import subscribe

URL = "http://127.0.0.1:9/hook"


async def _shipment(client: httpx.AsyncClient, **over: Any) -> str:
    return str((await shipment_setup(client, departed_at=T0.isoformat(), **over))["id"])


async def _trail(db: AsyncSession, alert: Alert) -> list[tuple[str, dict[str, Any]]]:
    rows = (await db.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert.id)
                             .order_by(AlertEvent.id))).all()
    return [(e.type, e.data) for e in rows]


async def _audited(db: AsyncSession, alert: Alert) -> list[str]:
    return list((await db.scalars(select(AuditRecord.action).where(
        AuditRecord.entity_type == "alert", AuditRecord.entity_id == str(alert.id))
        .order_by(AuditRecord.id))).all())


async def _only(db: AsyncSession, sid: str, kind: str) -> Alert:
    (alert,) = [a for a in await alerts_of(db, sid) if a.kind == kind]
    return alert


async def test_a_new_episode_after_an_acknowledged_alert_reopens_it_and_it_escalates(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    sid = await _shipment(client, product={"critical_max_c": 15.0, "stability_budget_s": 86400})
    clock = Clock(at(120))
    # Store-and-forward: a critical excursion at 5 min, uploaded two hours later.
    await store(engine, sid, "LOG-1", [(m, 16.0 if m == 5 else 5.0) for m in range(0, 121, 5)],
                received=at(120))
    await round_(engine, clock)
    critical = await _only(db, sid, "temperature_critical")
    assert (critical.state, critical.retroactive, critical.severity) == ("open", True, "critical")
    ack = await client.post(f"/api/v1/alerts/{critical.id}/ack",
                            json={"comment": "courier checked: lid seal intact"},
                            headers=bearer(await make_key(client, "coordinator")))
    assert ack.status_code == 200, ack.text
    # 40 min later, live: another critical excursion.
    for m in range(125, 171, 5):
        clock.set(at(m + 0.5))
        await store(engine, sid, "LOG-1", [(m, 16.0 if m >= 160 else 5.0)])
        await round_(engine, clock)
    reopened = await _only(db, sid, "temperature_critical")
    assert (reopened.state, reopened.retroactive, reopened.acknowledged_by) == ("open", False, None)
    assert reopened.reopened_at == at(160.5) and reopened.escalated_at is None
    trail = await _trail(db, reopened)
    assert [t for t, _ in trail] == ["opened", "acknowledged", "updated"]
    assert trail[2][1]["changes"] == {"episodes": [1, 2], "retroactive": [True, False]}
    assert trail[2][1]["state"] == "open"
    clock.set(at(160.5 + 15))  # unacknowledged critical: escalates 15 min after reopening
    await store(engine, sid, "LOG-1", [(175, 16.0)])
    await round_(engine, clock, config=EvalConfig(escalation_after_s=900))
    escalated = await _only(db, sid, "temperature_critical")
    assert (escalated.state, escalated.escalated_at) == ("escalated", at(175.5))
    assert [t for t, _ in await _trail(db, escalated)] == [
        "opened", "acknowledged", "updated", "escalated"]
    assert await _audited(db, escalated) == [
        "alert.opened", "alert.acknowledged", "alert.updated", "alert.escalated"]


async def test_late_data_and_a_second_logger_change_start_and_peak_announced(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    sid = await _shipment(client, logger_ids=("LOG-1", "LOG-2"))
    await subscribe(client, URL)
    clock = Clock(at(70.5))
    await store(engine, sid, "LOG-1", [(m, 9.0 if m >= 60 else 5.0) for m in range(0, 71, 5)])
    await store(engine, sid, "LOG-2", [(m, 5.0) for m in range(0, 36, 5)])  # then out of reach
    await round_(engine, clock)
    alert = await _only(db, sid, "temperature_high")
    assert (alert.condition_since, alert.peak_c) == (at(60), 9.0)
    # LOG-2's store-and-forward upload: it was warm from 40 min, at 11 °C.
    clock.set(at(76))
    await store(engine, sid, "LOG-2", [(m, 11.0) for m in range(40, 76, 5)], received=at(76))
    await store(engine, sid, "LOG-1", [(75, 9.0)])
    await round_(engine, clock)
    await round_(engine, clock)  # nothing new: nothing announced twice
    alert = await _only(db, sid, "temperature_high")
    assert (alert.condition_since, alert.peak_c, alert.details["loggers"]) == (
        at(40), 11.0, ["LOG-1", "LOG-2"])
    assert alert.message == "Temperature above range (2–8 °C, peak 11 °C) since 2026-11-20 08:40 UTC"
    trail = await _trail(db, alert)
    assert [t for t, _ in trail] == ["opened", "updated"]
    assert trail[1][1]["changes"] == {
        "condition_since": [at(60).isoformat(), at(40).isoformat()], "peak_c": [9.0, 11.0],
        "loggers": [["LOG-1"], ["LOG-1", "LOG-2"]]}
    assert await _audited(db, alert) == ["alert.opened", "alert.updated"]
    deliveries = (await db.scalars(select(WebhookDelivery).where(
        WebhookDelivery.alert_id == alert.id).order_by(WebhookDelivery.alert_event_id))).all()
    assert [d.event_type for d in deliveries] == ["alert.opened", "alert.updated"]
    data = json.loads(deliveries[1].body)["data"]
    assert (data["condition_since"], data["peak_c"]) == ("2026-11-20T08:40:00Z", 11.0)
    assert data["event"]["data"]["changes"]["peak_c"] == [9.0, 11.0]
    # The webhook carries the alert as GET /alerts shows it.
    assert set(AlertOut.model_fields) - {"shipment_reference"} <= set(data)


async def test_the_peak_is_the_worst_value_across_loggers_in_get_alerts(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    sid = await _shipment(client, logger_ids=("LOG-1", "LOG-2"), product={
        "temp_min_c": -8.0, "temp_max_c": 8.0, "critical_min_c": -10.0})
    await store(engine, sid, "LOG-1", [(0, 5.0), (5, -15.0)])
    await store(engine, sid, "LOG-2", [(0, 5.0), (5, -11.0)])
    await round_(engine, Clock(at(6)))
    items = (await client.get("/api/v1/alerts", params={"shipment_id": sid})).json()["items"]
    assert {(a["kind"], a["peak_c"]) for a in items} == {
        ("temperature_critical", -15.0), ("temperature_low", -15.0)}
    await store(engine, sid, "LOG-1", [(10, 5.0)])
    await round_(engine, Clock(at(11)))
    body = (await client.get("/api/v1/alerts", params={"kind": "temperature_critical"})).json()
    assert body["items"][0]["peak_c"] == -15.0 and uuid.UUID(body["items"][0]["id"])


async def test_a_product_created_through_the_api_judges_shock_by_its_limit(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    limited = await _shipment(client, product={"shock_limit_g": 5.0})
    product = (await client.get(f"/api/v1/shipments/{limited}")).json()["product_id"]
    shown = (await client.get(f"/api/v1/products/{product}")).json()
    assert (shown["shock_limit_g"], shown["light_sensitive"]) == (5.0, True)
    await store(engine, limited, "LOG-1", [(0, 5.0), (5, 5.0)], shock_g=12.0)
    await round_(engine, Clock(at(6)))
    shock = await _only(db, limited, "shock")
    assert (shock.severity, shock.details["max_shock_g"], shock.peak_c) == ("warning", 12.0, None)
    # No shock_limit_g: shock is not judged.
    unlimited = await _shipment(client, reference="SHP-2", logger_ids=("LOG-2",))
    await store(engine, unlimited, "LOG-2", [(0, 5.0), (5, 5.0)], shock_g=12.0)
    await round_(engine, Clock(at(6)))
    assert await alerts_of(db, unlimited) == []
