"""Delivery to a real HTTP receiver on localhost: signatures, retries, order, giving up, deleting."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from standardwebhooks import Webhook

from alerts.webhooks import retry
from alerts.webhooks import store as delivery_store
from alerts.webhooks.delivery import Limits
from alerts.webhooks.outbox import enqueue_many
from app.core.db import make_sessionmaker
from app.core.models import AuditRecord, WebhookAttempt, WebhookDelivery
from simulators.receiver import CLOSE, STALL, Receiver
from tests import factories
from tests.api.keys import bearer, make_key
from tests.webhooks_support import (
    FAST,
    PATIENT,
    add_event,
    deliver,
    many_opened_events,
    open_alert,
    shipment,
    spec_signature,
    subscribe,
)

HOOKS = "/api/v1/webhooks"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver(stall_s=60) as r:  # a stalled request is held until `release`
        yield r
        r.release.set()


async def _setup(
    client: httpx.AsyncClient, receiver: Receiver, **over: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    origin = await factories.site(client, "Leiden CTU", "NL")
    destination = await factories.site(client, "Boston infusion centre", "US")
    ship = await shipment(client, origin, destination, "SHP-1")
    sub = await subscribe(client, receiver.url(), **over)
    receiver.secrets.append(sub["secret"])
    return ship, sub


async def _rows(db: AsyncSession) -> list[WebhookDelivery]:
    stmt = select(WebhookDelivery).order_by(WebhookDelivery.alert_event_id)
    return list(await db.scalars(stmt.execution_options(populate_existing=True)))


async def _attempts(db: AsyncSession, delivery_id: uuid.UUID) -> list[WebhookAttempt]:
    stmt = select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)
    return list(await db.scalars(stmt.order_by(WebhookAttempt.id)))


async def test_delivered_event_verifies_with_the_spec_and_the_reference_package(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, receiver: Receiver
) -> None:
    ship, sub = await _setup(client, receiver)
    alert, _ = await open_alert(db, ship["id"])
    started = time.monotonic()
    assert await deliver(engine) == 1
    took = time.monotonic() - started
    (request,) = receiver.requests
    secret = sub["secret"]
    assert request.signature == spec_signature(
        secret, request.webhook_id, str(request.timestamp), request.body
    )
    payload = Webhook(secret).verify(request.body, request.headers)  # also checks the timestamp
    assert payload["type"] == "alert.opened" and payload["data"]["id"] == str(alert.id)
    assert request.headers["content-type"] == "application/json"
    (row,) = await _rows(db)
    assert request.webhook_id == row.webhook_id and request.body == row.body
    assert (row.state, row.attempts, row.last_status_code, row.leased_until) == (
        "delivered", 1, 200, None
    )
    (attempt,) = await _attempts(db, row.id)
    assert attempt.status_code == 200 and 0 < attempt.duration_s <= took  # measured within the call
    assert await deliver(engine) == 0  # nothing left


async def test_failed_attempts_500_redirect_timeout_refused_then_delivered_with_the_same_id(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, receiver: Receiver
) -> None:
    ship, _ = await _setup(client, receiver)
    await open_alert(db, ship["id"])
    receiver.fail_next("500", "302", STALL, CLOSE)
    now = datetime.now(UTC)
    expected_errors = []
    for delay in (None, 5, 30, 120, 600):  # 500, 302, timeout, dropped connection, refused
        # Only the stalled attempt gets the short timeout; the others must not time out.
        config = FAST if delay == 30 else PATIENT
        if delay is not None:
            (row,) = await _rows(db)
            assert row.state == "pending" and row.leased_until is None
            assert row.next_attempt_at - row.last_attempt_at >= timedelta(seconds=delay)
            assert await deliver(engine, row.next_attempt_at - timedelta(seconds=1)) == 0  # not yet
            now = row.next_attempt_at
        if delay == 600:
            await receiver.refuse()
        assert await deliver(engine, now, config=config) == 1
        expected_errors.append(delay)
    await receiver.start()
    (row,) = await _rows(db)
    assert await deliver(engine, row.next_attempt_at) == 1
    (row,) = await _rows(db)
    assert row.state == "delivered" and row.attempts == 6
    attempts = await _attempts(db, row.id)
    assert [a.status_code for a in attempts] == [500, 302, None, None, None, 200]
    assert "HTTP 500" in attempts[0].error and "HTTP 302" in attempts[1].error
    assert f"no complete answer within {FAST.timeout_s:g} s" in attempts[2].error
    assert "Error" in attempts[3].error and "Connect" in attempts[4].error
    ids = {r.webhook_id for r in receiver.requests}
    assert ids == {row.webhook_id} and len(receiver.requests) == 5  # the refused one never arrived
    assert all(r.verified for r in receiver.requests)
    assert list(receiver.delivered) == [row.webhook_id]


async def test_events_of_one_alert_arrive_in_order_and_other_alerts_are_not_held_up(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, receiver: Receiver
) -> None:
    ship, _ = await _setup(client, receiver)
    alert, _ = await open_alert(db, ship["id"], kind="temperature_high")
    for type_ in ("updated", "escalated"):
        await add_event(db, alert, type_)
    receiver.fail_next("503")
    now = datetime.now(UTC)
    assert await deliver(engine, now) == 1  # only the first event of the alert may go: it fails
    await open_alert(db, ship["id"], kind="shock")
    assert await deliver(engine) == 1  # another alert is not blocked
    assert await deliver(engine, now + timedelta(minutes=1)) == 1  # the first event, retried
    assert await deliver(engine, now + timedelta(minutes=1)) == 1
    assert await deliver(engine, now + timedelta(minutes=1)) == 1
    assert await deliver(engine, now + timedelta(minutes=1)) == 0
    order = [
        (r.payload["data"]["kind"], r.payload["type"]) for r in receiver.delivered.values()
    ]
    assert order == [
        ("shock", "alert.opened"), ("temperature_high", "alert.opened"),
        ("temperature_high", "alert.updated"), ("temperature_high", "alert.escalated"),
    ]


async def _drive(engine: AsyncEngine, db: AsyncSession, now: datetime) -> tuple[WebhookDelivery, datetime]:
    """Run cycles at each due time until the (last) delivery is final."""
    for _ in range(40):
        row = (await _rows(db))[-1]
        if row.state != "pending":
            return row, now
        now = max(now, row.next_attempt_at)
        await deliver(engine, now)
    raise AssertionError("never reached a final state")


async def test_a_delivery_failing_for_24_hours_is_marked_failed_then_the_next_event_goes(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, receiver: Receiver
) -> None:
    ship, _ = await _setup(client, receiver)
    alert, _ = await open_alert(db, ship["id"])
    await add_event(db, alert, "updated")
    receiver.fail_next(*["500"] * 15)
    start = datetime.now(UTC)
    for _ in range(40):
        first = (await _rows(db))[0]
        if first.state != "pending":
            break
        await deliver(engine, max(start, first.next_attempt_at))
    attempts = await _attempts(db, first.id)
    assert first.state == "failed" and first.last_status_code == 500
    assert attempts[-1].attempted_at - attempts[0].attempted_at >= retry.GIVE_UP_AFTER
    assert len(attempts) == 15 == first.attempts
    assert len(receiver.requests) == 15  # the second event waited for the first to be final
    second, _ = await _drive(engine, db, attempts[-1].attempted_at)
    assert second.state == "delivered"
    assert receiver.requests[-1].payload["type"] == "alert.updated"


async def test_an_endpoint_failing_for_days_is_disabled_visibly_and_resumes_when_enabled(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, receiver: Receiver
) -> None:
    ship, sub = await _setup(client, receiver)
    alert, _ = await open_alert(db, ship["id"])
    await receiver.refuse()
    first, now = await _drive(engine, db, datetime.now(UTC))
    assert first.state == "failed"
    shown = (await client.get(f"/api/v1/webhooks/{sub['id']}")).json()
    assert shown["enabled"] and shown["consecutive_failures"] == 15 and shown["failing_since"]
    # Three days after the first failure, one more failed attempt switches the endpoint off.
    later = now + retry.DISABLE_AFTER
    alert.state = "resolved"
    await add_event(db, alert, "resolved")
    assert await deliver(engine, later) == 1
    shown = (await client.get(f"/api/v1/webhooks/{sub['id']}")).json()
    assert not shown["enabled"] and shown["disabled_reason"].startswith("disabled automatically")
    audit = (await db.scalars(
        select(AuditRecord).where(AuditRecord.entity_id == sub["id"],
                                  AuditRecord.action == "auto_disable")
    )).one()
    assert audit.actor == "system" and "every attempt failed since" in (audit.reason or "")
    listed = (await client.get("/api/v1/webhooks", params={"enabled": "false"})).json()["items"]
    assert [s["id"] for s in listed] == [sub["id"]]
    assert await deliver(engine, later + timedelta(days=1)) == 0  # paused while disabled
    # Re-enabled (the receiver is back): the paused event goes at once.
    await receiver.start()
    response = await client.patch(f"/api/v1/webhooks/{sub['id']}", json={"enabled": True})
    assert response.status_code == 200 and response.json()["consecutive_failures"] == 0
    assert await deliver(engine) == 1
    assert [r.payload["type"] for r in receiver.delivered.values()] == ["alert.resolved"]


async def test_two_workers_share_the_queue_and_send_each_event_once(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, receiver: Receiver
) -> None:
    ship, _ = await _setup(client, receiver)
    events = await many_opened_events(db, ship["id"], 300)
    await enqueue_many(db, events)
    await db.commit()

    async def worker() -> int:
        limits, total = Limits(PATIENT), 0
        while (n := await deliver(engine, limits=limits)) > 0:
            total += n
        return total

    counts = await asyncio.gather(worker(), worker())
    assert sum(counts) == 300 and min(counts) > 0  # both took part
    assert len(receiver.requests) == 300 == len(receiver.delivered)  # no event sent twice
    states = await db.execute(select(WebhookDelivery.state, func.count()).group_by(WebhookDelivery.state))
    assert dict(states.all()) == {"delivered": 300}
    assert await db.scalar(select(func.count()).select_from(WebhookAttempt)) == 300


async def test_subscription_deleted_while_an_attempt_is_in_flight(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, receiver: Receiver
) -> None:
    ship, sub = await _setup(client, receiver)
    await open_alert(db, ship["id"])
    receiver.fail_next(STALL)
    cycle = asyncio.create_task(deliver(engine))
    await receiver.wait_requests(1)
    assert (await client.delete(f"/api/v1/webhooks/{sub['id']}")).status_code == 204
    receiver.release.set()
    assert await cycle == 1  # raised nothing
    # The attempt that was on the wire is logged; the delivery stays cancelled, never retried.
    (row,) = await _rows(db)
    assert row.state == "cancelled" and row.lease_token is None
    (attempt,) = await _attempts(db, row.id)
    assert attempt.status_code is None and attempt.error is not None
    assert await deliver(engine) == 0


async def test_queue_statistics(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, receiver: Receiver
) -> None:
    ship, _ = await _setup(client, receiver)
    await open_alert(db, ship["id"])
    await open_alert(db, ship["id"], kind="shock")
    async with make_sessionmaker(engine)() as session:
        depth, age = await delivery_store.queue_stats(session, datetime.now(UTC) + timedelta(minutes=1))
    assert depth == 2 and 60 <= age < 120
    await deliver(engine)
    async with make_sessionmaker(engine)() as session:
        assert await delivery_store.queue_stats(session, datetime.now(UTC)) == (0, 0.0)


async def test_a_deleted_subscription_keeps_its_deliveries_attempts_and_audit(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, receiver: Receiver
) -> None:
    origin = await factories.site(client, "Leiden CTU", "NL")
    destination = await factories.site(client, "Boston infusion centre", "US")
    ship = await shipment(client, origin, destination, "SHP-1")
    site_key = bearer(await make_key(client, "site", origin))
    coordinator = bearer(await make_key(client, "coordinator"))
    sub = await subscribe(client, receiver.url(), site_id=origin)
    receiver.secrets.append(sub["secret"])
    alert, _ = await open_alert(db, ship["id"])
    assert await deliver(engine) == 1  # delivered, one attempt
    await add_event(db, alert, "updated")  # then one still pending
    url = f"{HOOKS}/{sub['id']}"

    deleted = await client.delete(url, headers=site_key)
    assert deleted.status_code == 204
    # Coordinators read it, its delivery log and every attempt.
    kept = (await client.get(url, headers=coordinator)).json()
    assert kept["enabled"] is False and kept["deleted_at"] is not None
    assert kept["deleted_by"].startswith("key:") and kept["disabled_reason"].startswith("deleted by")
    log = (await client.get(f"{url}/deliveries", headers=coordinator)).json()["items"]
    assert [(d["event_type"], d["state"], len(d["attempts"])) for d in log] == [
        ("alert.updated", "cancelled", 0), ("alert.opened", "delivered", 1)]
    assert log[0]["last_error"] == "cancelled: the subscription was deleted"
    one = await client.get(f"{url}/deliveries/{log[1]['id']}", headers=coordinator)
    assert one.status_code == 200 and one.json()["attempts"][0]["status_code"] == 200
    listed = (await client.get(HOOKS, headers=coordinator)).json()["items"]
    assert listed == []
    gone = (await client.get(HOOKS, params={"deleted": "true"}, headers=coordinator)).json()
    assert [s["id"] for s in gone["items"]] == [sub["id"]]
    # For the site it is gone; nobody can change, retry or delete it again.
    assert (await client.get(url, headers=site_key)).status_code == 404
    assert (await client.get(f"{url}/deliveries", headers=site_key)).status_code == 404
    assert (await client.get(HOOKS, params={"deleted": "true"}, headers=site_key)
            ).json()["items"] == []
    for method, path, body in (("PATCH", url, {"enabled": True}),
                               ("POST", f"{url}/rotate-secret", {}),
                               ("POST", f"{url}/deliveries/{log[0]['id']}/retry", None),
                               ("DELETE", url, None)):
        answer = await client.request(method, path, json=body, headers=coordinator)
        assert answer.status_code == 409, (method, path)
        assert "deleted" in answer.json()["detail"]
    # Nothing is sent any more, not even for new alert events.
    await add_event(db, alert, "escalated")
    assert await deliver(engine) == 0
    assert len(receiver.requests) == 1
    # The database keeps the evidence: no cascade.
    assert await db.scalar(select(func.count()).select_from(WebhookAttempt)) == 1
    assert await db.scalar(select(func.count()).select_from(WebhookDelivery)) == 2
    with pytest.raises(IntegrityError):
        await db.execute(text("DELETE FROM webhook_subscriptions WHERE id = :id"),
                         {"id": uuid.UUID(sub["id"])})
    await db.rollback()
    with pytest.raises(IntegrityError):
        await db.execute(text("DELETE FROM webhook_deliveries WHERE state = 'delivered'"))
    await db.rollback()
    audit = (await db.scalars(select(AuditRecord).where(
        AuditRecord.entity_id == sub["id"], AuditRecord.action == "delete"))).one()
    assert audit.before["deleted_at"] is None and audit.after["deleted_at"] is not None
    assert audit.after["cancelled_deliveries"] == 1 and audit.actor.startswith("key:")
