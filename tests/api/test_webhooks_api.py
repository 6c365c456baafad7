"""The webhooks API: subscriptions, secrets shown once, URL safety, site scoping, rotation, the log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.models import AuditRecord, WebhookSubscription
from app.core.settings import Settings
from simulators.receiver import STALL, Receiver
from tests import factories
from tests.api.keys import bearer, make_key
from tests.webhooks_support import deliver, open_alert, shipment, spec_signature, subscribe

HOOKS = "/api/v1/webhooks"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver(stall_s=60) as r:  # a stalled request is held until `release`
        yield r
        r.release.set()


def _field_errors(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return {e["field"] for e in response.json().get("errors", [])}


async def test_create_shows_the_secret_once_and_audits_without_it(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    created = await subscribe(client, "https://93.184.216.34/hooks", kinds=["shock", "shock"],
                              min_severity="warning", description="pharmacy on-call")
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["kinds"] == ["shock"] and created["enabled"] and created["site_id"] is None
    shown = await client.get(f"{HOOKS}/{created['id']}")
    assert shown.status_code == 200 and "secret" not in shown.json()
    listed = (await client.get(HOOKS)).json()
    assert [s["id"] for s in listed["items"]] == [created["id"]] and listed["next_cursor"] is None
    assert all("secret" not in s for s in listed["items"])
    (record,) = (await db.scalars(
        select(AuditRecord).where(AuditRecord.entity_type == "webhook_subscription")
    )).all()
    assert record.action == "create" and record.after["url"] == "https://93.184.216.34/hooks"
    assert created["secret"] not in str(record.after) and "secret" not in record.after


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://93.184.216.34/x"}, "url"),
        ({"url": "https://93.184.216.34/x", "kinds": ["temperature_hot"]}, "kinds.0"),
        ({"url": "https://93.184.216.34/x", "min_severity": "fatal"}, "min_severity"),
        ({"url": "https://93.184.216.34/x", "site_id": "7b0a8a3e-6a7e-4f39-9d7e-4a1c2b3c4d5e"},
         "site_id"),
        ({"url": "https://93.184.216.34/x", "secret": "whsec_mine"}, "secret"),
        ({}, "url"),
    ],
)
async def test_invalid_subscriptions_are_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    assert field in _field_errors(await client.post(HOOKS, json=body))


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9000/hook", "http://localhost/hook", "http://[::1]/", "http://10.0.0.5/",
     "http://192.168.1.20/", "http://169.254.169.254/latest/meta-data/", "http://2130706433/",
     "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "http://no-such-host.invalid/"],
)
async def test_private_loopback_and_link_local_targets_are_refused_by_default(
    settings: Settings, engine: AsyncEngine, admin_headers: dict[str, str], url: str,
    client: httpx.AsyncClient,
) -> None:
    from app.api.main import create_app

    strict = create_app(settings.model_copy(update={"webhook_allow_private": False}), engine=engine)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=strict), base_url="http://test", headers=admin_headers
    ) as http:
        refused = await http.post(HOOKS, json={"url": url})
        assert "url" in _field_errors(refused)
        assert "COLDCHAIN_WEBHOOK_ALLOW_PRIVATE" in refused.json()["detail"] or "resolve" in (
            refused.json()["detail"]
        )
        accepted = await http.post(HOOKS, json={"url": "https://93.184.216.34/ok"})
        assert accepted.status_code == 201
        # A PATCH is checked the same way.
        patched = await http.patch(f"{HOOKS}/{accepted.json()['id']}", json={"url": url})
        assert "url" in _field_errors(patched)


async def test_site_keys_manage_only_their_own_site(client: httpx.AsyncClient) -> None:
    site_a, site_b = await factories.site(client, "A", "NL"), await factories.site(client, "B", "DE")
    key_a = bearer(await make_key(client, "site", site_a))
    key_qp = bearer(await make_key(client, "qp"))
    coordinator = bearer(await make_key(client, "coordinator"))

    own = await client.post(HOOKS, json={"url": "https://93.184.216.34/a"}, headers=key_a)
    assert own.status_code == 201 and own.json()["site_id"] == site_a  # defaults to its site
    other = await client.post(HOOKS, json={"url": "https://93.184.216.34/b", "site_id": site_b},
                              headers=key_a)
    assert other.status_code == 403
    theirs = await subscribe(client, "https://93.184.216.34/b", site_id=site_b)
    global_ = (await client.post(HOOKS, json={"url": "https://93.184.216.34/all"},
                                 headers=coordinator)).json()

    listed = (await client.get(HOOKS, headers=key_a)).json()["items"]
    assert [s["id"] for s in listed] == [own.json()["id"]]
    for sub in (theirs, global_):
        assert (await client.get(f"{HOOKS}/{sub['id']}", headers=key_a)).status_code == 404
        assert (await client.delete(f"{HOOKS}/{sub['id']}", headers=key_a)).status_code == 404
        assert (await client.get(f"{HOOKS}/{sub['id']}/deliveries", headers=key_a)).status_code == 404
    moved = await client.patch(f"{HOOKS}/{own.json()['id']}", json={"site_id": site_b}, headers=key_a)
    assert moved.status_code == 403
    widened = await client.patch(f"{HOOKS}/{own.json()['id']}", json={"site_id": None}, headers=key_a)
    assert widened.status_code == 403
    assert (await client.get(HOOKS, headers=key_qp)).status_code == 403
    assert len((await client.get(HOOKS, headers=coordinator)).json()["items"]) == 3


async def test_patch_disable_enable_and_delete_are_audited(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    sub = await subscribe(client, "https://93.184.216.34/x")
    url = f"{HOOKS}/{sub['id']}"
    changed = await client.patch(url, json={"kinds": ["shock"], "min_severity": "critical",
                                            "description": "night desk"})
    assert changed.status_code == 200
    assert (changed.json()["kinds"], changed.json()["min_severity"]) == (["shock"], "critical")
    assert (await client.patch(url, json={"kinds": None})).json()["kinds"] is None
    assert "min_severity" in _field_errors(await client.patch(url, json={"min_severity": None}))
    off = (await client.patch(url, json={"enabled": False})).json()
    assert not off["enabled"] and off["disabled_reason"] == "disabled by admin-bootstrap"
    on = (await client.patch(url, json={"enabled": True})).json()
    assert on["enabled"] and on["disabled_reason"] is None and on["disabled_at"] is None
    assert (await client.delete(url)).status_code == 204
    kept = (await client.get(url)).json()  # read-only, with its delivery log
    assert (kept["enabled"], kept["deleted_by"]) == (False, "admin-bootstrap")
    assert await db.get(WebhookSubscription, sub["id"]) is not None
    actions = (await db.scalars(
        select(AuditRecord.action).where(AuditRecord.entity_id == sub["id"]).order_by(AuditRecord.id)
    )).all()
    assert actions == ["create", "update", "update", "update", "update", "delete"]


async def test_secret_rotation_signs_with_both_secrets_during_the_overlap(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, receiver: Receiver
) -> None:
    origin, destination = await factories.site(client, "A", "NL"), await factories.site(client, "B", "US")
    ship = await shipment(client, origin, destination, "SHP-ROT")
    sub = await subscribe(client, receiver.url())
    old = sub["secret"]
    rotated = await client.post(f"{HOOKS}/{sub['id']}/rotate-secret", json={"overlap_s": 3600})
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != old and new.startswith("whsec_")
    ends = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
    assert timedelta(minutes=59) < ends - datetime.now(UTC) <= timedelta(hours=1)
    receiver.secrets.append(old)  # a site that has not switched yet still verifies
    await open_alert(db, ship["id"])
    assert await deliver(engine) == 1
    request = receiver.requests[-1]
    ts = str(request.timestamp)
    assert request.signature.split(" ") == [
        spec_signature(new, request.webhook_id, ts, request.body),
        spec_signature(old, request.webhook_id, ts, request.body),
    ]
    assert request.verified
    # After the overlap only the new secret signs.
    await open_alert(db, ship["id"], kind="shock")
    assert await deliver(engine, ends + timedelta(seconds=1)) == 1
    request = receiver.requests[-1]
    assert request.signature == spec_signature(new, request.webhook_id, str(request.timestamp),
                                               request.body)
    assert not request.verified  # the site still holding only the old secret rejects it (401)
    # overlap 0: the old secret stops at once; nothing in the audit trail reveals a secret.
    again = await client.post(f"{HOOKS}/{sub['id']}/rotate-secret", json={"overlap_s": 0})
    assert again.json()["previous_secret_expires_at"] is None
    audit = (await db.scalars(select(AuditRecord).where(AuditRecord.action == "rotate_secret"))).all()
    assert len(audit) == 2 and all(new not in str(a.after) for a in audit)


async def test_delivery_log_and_manual_retry(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, receiver: Receiver
) -> None:
    origin, destination = await factories.site(client, "A", "NL"), await factories.site(client, "B", "US")
    ship = await shipment(client, origin, destination, "SHP-LOG")
    sub = await subscribe(client, receiver.url())
    receiver.secrets.append(sub["secret"])
    log_url = f"{HOOKS}/{sub['id']}/deliveries"
    await open_alert(db, ship["id"], kind="shock")
    receiver.fail_next(*["500"] * 15)
    now = datetime.now(UTC)
    for _ in range(20):  # until the retries are exhausted (clock injected)
        (item,) = (await client.get(log_url)).json()["items"]
        if item["state"] != "pending":
            break
        now = max(now, datetime.fromisoformat(item["next_attempt_at"]))
        await deliver(engine, now)
    assert item["state"] == "failed" and item["next_attempt_at"] is None
    assert item["attempt_count"] == 15 and item["last_status_code"] == 500
    assert [a["status_code"] for a in item["attempts"]] == [500] * 15
    assert all(a["duration_s"] >= 0 and a["error"].startswith("HTTP 500") for a in item["attempts"])
    assert (await client.get(log_url, params={"state": "failed"})).json()["items"][0]["id"] == item["id"]
    assert (await client.get(log_url, params={"state": "delivered"})).json()["items"] == []

    retried = await client.post(f"{log_url}/{item['id']}/retry")
    assert retried.status_code == 202 and retried.json()["state"] == "pending"
    assert await deliver(engine) == 1
    shown = (await client.get(f"{log_url}/{item['id']}")).json()
    assert shown["state"] == "delivered" and shown["attempts"][-1]["status_code"] == 200
    assert list(receiver.delivered) == [item["webhook_id"]]  # same webhook-id as the failed ones
    assert {r.webhook_id for r in receiver.requests} == {item["webhook_id"]}
    audit = (await db.scalars(select(AuditRecord).where(AuditRecord.action == "redeliver"))).one()
    assert audit.entity_id == item["id"]

    # A retry while an attempt is in flight is refused; so is one on a disabled subscription.
    receiver.fail_next(STALL)
    assert (await client.post(f"{log_url}/{item['id']}/retry")).status_code == 202
    cycle = asyncio.create_task(deliver(engine))
    await receiver.wait_requests(17)
    busy = await client.post(f"{log_url}/{item['id']}/retry")
    assert busy.status_code == 409 and "in flight" in busy.json()["detail"]
    receiver.release.set()
    await cycle
    await client.patch(f"{HOOKS}/{sub['id']}", json={"enabled": False})
    assert (await client.post(f"{log_url}/{item['id']}/retry")).status_code == 409
    assert (await client.post(f"{log_url}/00000000-0000-0000-0000-000000000000/retry")).status_code == 404


async def test_delivery_log_pages_newest_first(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    origin, destination = await factories.site(client, "A", "NL"), await factories.site(client, "B", "US")
    ship = await shipment(client, origin, destination, "SHP-PAGES")
    sub = await subscribe(client, "http://127.0.0.1:9/never")
    kinds = ["shock", "battery_low", "light_exposure", "signal_lost", "route_deviation"]
    for kind in kinds:
        await open_alert(db, ship["id"], kind=kind)
    seen, cursor = [], None
    while True:
        page = (await client.get(f"{HOOKS}/{sub['id']}/deliveries",
                                 params={"limit": 2, **({"cursor": cursor} if cursor else {})})).json()
        seen += [item["alert_event_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == 5
    bad = await client.get(f"{HOOKS}/{sub['id']}/deliveries", params={"cursor": "nonsense"})
    assert "cursor" in _field_errors(bad)


async def test_fixing_the_url_sends_the_backlog_at_once(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, receiver: Receiver
) -> None:
    origin, destination = await factories.site(client, "A", "NL"), await factories.site(client, "B", "US")
    ship = await shipment(client, origin, destination, "SHP-URL")
    await receiver.refuse()
    sub = await subscribe(client, receiver.url())  # a typo'd or dead endpoint, say
    receiver.secrets.append(sub["secret"])
    await open_alert(db, ship["id"])
    assert await deliver(engine) == 1  # refused
    (item,) = (await client.get(f"{HOOKS}/{sub['id']}/deliveries")).json()["items"]
    assert item["state"] == "pending" and item["attempts"][0]["error"].startswith("ConnectError")
    assert (await client.get(f"{HOOKS}/{sub['id']}")).json()["consecutive_failures"] == 1
    await receiver.start()
    fixed = await client.patch(f"{HOOKS}/{sub['id']}", json={"url": receiver.url("/fixed")})
    assert fixed.status_code == 200 and fixed.json()["consecutive_failures"] == 0
    assert await deliver(engine) == 1  # due at once, not after the 5 s backoff
    assert [r.path for r in receiver.delivered.values()] == ["/fixed"]
