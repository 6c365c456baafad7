"""Who sees and decides what: reference data scoped by site, scopes that fail closed, QP decisions."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.api.deps import get_principal
from app.api.main import create_app
from app.core.models import Alert, AlertEvent, WebhookSubscription, utcnow
from app.core.security import Principal
from app.core.settings import Settings
from tests import factories as f
from tests.api.keys import bearer, make_key
from tests.api.people import app_of, browser, qp_person, signed

API = "/api/v1"


async def _two_sites(client: httpx.AsyncClient, db: AsyncSession) -> dict[str, Any]:
    """Site A with a shipment on its lane; site B with its own lane, product and packaging,
    one shipment, and an unused lane from B to a third site."""
    a, b, hub = [await f.site(client, n, c) for n, c in (("Amsterdam", "NL"), ("Basel", "CH"),
                                                          ("Hub", "BE"))]
    ids: dict[str, Any] = {"a": a, "b": b, "hub": hub}
    for side, site in (("a", a), ("b", b)):
        lane = await f.lane(client, site, hub, name=f"lane {side}")
        product = await f.refrigerated_product(client, name=f"product {side}")
        packaging = await f.post(client, "/packaging", {"name": f"box {side}",
                                                        "qualified_hold_h": 72})
        await f.logger(client, f"LOG-{side}")
        shipment = await f.post(client, "/shipments", {
            "reference": f"SHP-{side}", "lane_id": lane, "product_id": product,
            "packaging_id": packaging["id"], "logger_ids": [f"LOG-{side}"],
            "packed_at": f.T0.isoformat()})
        ids[side + "_ref"] = {"lane": lane, "product": product, "packaging": packaging["id"],
                              "shipment": shipment["id"]}
    ids["b_spare_lane"] = await f.lane(client, b, hub, name="spare lane b")
    ids["unused_product"] = await f.refrigerated_product(client, name="unused product")
    # A site key sees a lane that a shipment of its own travels, whoever the lane belongs to.
    ids["hub_lane"] = await f.lane(client, hub, a, name="hub to a")
    return ids


async def _ids(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> set[str]:
    response = await client.get(f"{API}{path}", headers=headers)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


async def test_a_site_key_sees_only_the_reference_data_of_its_own_lanes_and_shipments(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    ids = await _two_sites(client, db)
    a, b = ids["a_ref"], ids["b_ref"]
    site_a = bearer(await make_key(client, "site", ids["a"]))
    assert await _ids(client, "/lanes", site_a) == {a["lane"], ids["hub_lane"]}
    assert await _ids(client, "/products", site_a) == {a["product"]}
    assert await _ids(client, "/packaging", site_a) == {a["packaging"]}
    for path, mine, theirs in (("/lanes", a["lane"], b["lane"]),
                               ("/lanes", ids["hub_lane"], ids["b_spare_lane"]),
                               ("/products", a["product"], b["product"]),
                               ("/products", a["product"], ids["unused_product"]),
                               ("/packaging", a["packaging"], b["packaging"])):
        assert (await client.get(f"{API}{path}/{mine}", headers=site_a)).status_code == 200
        hidden = await client.get(f"{API}{path}/{theirs}", headers=site_a)
        missing = await client.get(f"{API}{path}/{uuid.uuid4()}", headers=site_a)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["title"] == missing.json()["title"]
    # Staff see everything.
    coordinator = bearer(await make_key(client, "coordinator"))
    assert len(await _ids(client, "/lanes", coordinator)) == 4
    assert len(await _ids(client, "/products", coordinator)) == 3


@pytest.fixture
async def as_principal(
    client: httpx.AsyncClient, settings: Settings, engine: AsyncEngine
) -> AsyncIterator[Any]:
    """An app whose every request acts as a given principal (one the key table cannot hold)."""
    app = create_app(settings.model_copy(update={"rate_limit_per_s": 0}), engine=engine)

    def acting(principal: Principal) -> httpx.AsyncClient:
        app.dependency_overrides[get_principal] = lambda: principal
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")

    yield acting


@pytest.mark.parametrize("principal", [
    Principal(actor="key:nosite00", role="site"),  # a site principal without a site
    Principal(actor="key:auditor0", role="auditor"),  # a role no scope knows
], ids=["site-without-site", "unknown-role"])
async def test_every_scope_fails_closed(
    client: httpx.AsyncClient, db: AsyncSession, as_principal: Any, principal: Principal
) -> None:
    ids = await _two_sites(client, db)
    sid = ids["a_ref"]["shipment"]
    global_hook = WebhookSubscription(url="https://all.example/hook", site_id=None,
                                      secret="whsec_" + "A" * 32)
    alert = Alert(shipment_id=uuid.UUID(sid), kind="temperature_high", severity="warning",
                  state="open", opened_at=utcnow(), condition_since=f.T0)
    db.add_all([global_hook, alert])
    await db.commit()
    async with as_principal(principal) as http:
        for path in ("/shipments", "/alerts", "/sites", "/lanes", "/products", "/packaging",
                     "/webhooks"):
            response = await http.get(f"{API}{path}")
            if response.status_code != 403:
                assert response.status_code == 200, (path, response.text)
                assert response.json()["items"] == [], f"{path} leaks to {principal.role}"
        for path in (f"/shipments/{sid}", f"/shipments/{sid}/readings", f"/alerts/{alert.id}",
                     f"/sites/{ids['a']}", f"/lanes/{ids['a_ref']['lane']}",
                     f"/products/{ids['a_ref']['product']}",
                     f"/packaging/{ids['a_ref']['packaging']}", f"/webhooks/{global_hook.id}"):
            assert (await http.get(f"{API}{path}")).status_code in (403, 404), path
        made = await http.post(f"{API}/webhooks", json={"url": "http://127.0.0.1:9/x"})
        assert made.status_code == 403


async def test_site_stream_filter_fails_closed() -> None:
    from app.api.routes.stream import visible

    message = {"type": "alert", "shipment_id": "s", "sites": ["None", str(uuid.uuid4())]}
    assert not visible(message, Principal(actor="k", role="site"), None)
    assert not visible(message, Principal(actor="k", role="auditor"), None)
    assert visible(message, Principal(actor="k", role="qp"), None)


async def _delivered_with_alert(client: httpx.AsyncClient, db: AsyncSession) -> tuple[str, str]:
    shipment = await f.shipment_setup(client, departed_at=(f.T0 + timedelta(hours=1)).isoformat())
    sid = shipment["id"]
    await f.post(client, f"/shipments/{sid}/events",
                 {"type": "delivered", "at": (f.T0 + timedelta(hours=20)).isoformat()})
    alert = Alert(shipment_id=uuid.UUID(sid), kind="temperature_critical", severity="critical",
                  state="open", opened_at=utcnow(), condition_since=f.T0)
    db.add(alert)
    await db.flush()
    db.add(AlertEvent(alert_id=alert.id, type="opened", data={}))
    await db.commit()
    return sid, str(alert.id)


async def test_decisions_on_the_record_are_never_the_admins(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    sid, alert_id = await _delivered_with_alert(client, db)
    release = {"decision": "released", "reason": "record complete"}
    for path, body in ((f"/shipments/{sid}/release", release),
                       (f"/alerts/{alert_id}/ack", {"comment": "seen"}),
                       (f"/alerts/{alert_id}/resolve", {"comment": "probe faulty"})):
        refused = await client.post(f"{API}{path}", json=body)  # the bootstrap admin key
        assert refused.status_code == 403, path
        assert refused.headers["content-type"] == "application/problem+json"
        assert "decision on the record" in refused.json()["detail"]
        made_admin = bearer(await make_key(client, "admin"))
        assert (await client.post(f"{API}{path}", json=body, headers=made_admin)).status_code == 403
    alert = await db.scalar(select(Alert).where(Alert.id == uuid.UUID(alert_id)))
    assert alert is not None and alert.state == "open"
    coordinator = bearer(await make_key(client, "coordinator"))
    assert (await client.post(f"{API}/alerts/{alert_id}/ack", json={"comment": "seen"},
                              headers=coordinator)).status_code == 200
    # A release is a QP person's signature: a qp key is refused too.
    qp_key = bearer(await make_key(client, "qp"))
    by_key = await client.post(f"{API}/shipments/{sid}/release", json=release, headers=qp_key)
    assert by_key.status_code == 403
    async with qp_person(client) as qp:
        done = await qp.post(f"{API}/shipments/{sid}/release",
                             json=signed(release["decision"], release["reason"]))
    assert done.status_code == 200 and done.json()["released_by"] == "user:qp-all@example.org"


async def test_the_demo_hands_out_keys_for_the_people_who_decide(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    from simulators import demo

    keys = await demo.role_keys(settings)
    answer = await client.post(f"{API}/sites", json={"name": "Demo depot", "country": "NL"},
                               headers=bearer(keys["coordinator"]))
    assert answer.status_code == 201
    listed = (await client.get(f"{API}/api-keys")).json()["items"]
    assert [(k["role"], k["name"]) for k in listed] == [("coordinator", "demo coordinator")]
    assert set(keys) == {"coordinator"}
    # The people sign in with the passwords it prints; a second run resets them.
    first = await demo.role_people(settings)
    second = await demo.role_people(settings)
    assert {role: email for role, (email, _) in second.items()} == {
        "coordinator": "coordinator@demo.example", "qp": "qp@demo.example"}
    async with browser(app_of(client)) as page:
        for role, (email, password) in second.items():
            login = await page.post(f"{API}/auth/login", json={"email": email, "password": password})
            assert login.status_code == 200 and login.json()["role"] == role
        stale = await page.post(f"{API}/auth/login", json={
            "email": "qp@demo.example", "password": first["qp"][1]})
        assert stale.status_code == 401
