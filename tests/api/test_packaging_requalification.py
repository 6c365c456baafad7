"""Packaging requalification through the API: a shipment packed after it is refused (422 naming
the packaging and the day); the fleet lists packaging that runs out within 30 days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import AuditRecord
from tests import factories as f
from tests.api.keys import bearer, make_key

API = "/api/v1"


async def _packaging(client: httpx.AsyncClient, name: str, until: date | None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "qualified_hold_h": 96}
    if until is not None:
        body["requalified_until"] = until.isoformat()
    return await f.post(client, "/packaging", body)


async def _world(client: httpx.AsyncClient) -> dict[str, str]:
    origin = await f.site(client, "Leiden CTU", "NL")
    destination = await f.site(client, "Boston infusion centre", "US")
    return {"lane_id": await f.lane(client, origin, destination),
            "product_id": await f.refrigerated_product(client), "destination": destination}


def _shipment(world: dict[str, str], packaging_id: str, packed_at: datetime,
              ref: str, logger_id: str) -> dict[str, Any]:
    return {"reference": ref, "lane_id": world["lane_id"], "product_id": world["product_id"],
            "packaging_id": packaging_id, "logger_ids": [logger_id],
            "packed_at": packed_at.isoformat()}


async def test_requalified_until_is_stored_read_and_audited(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    created = await _packaging(client, "Dry shipper 10d", date(2027, 3, 31))
    assert created["requalified_until"] == "2027-03-31"
    read = (await client.get(f"{API}/packaging/{created['id']}")).json()
    assert read["requalified_until"] == "2027-03-31"
    listed = (await client.get(f"{API}/packaging")).json()["items"]
    assert [p["requalified_until"] for p in listed] == ["2027-03-31"]
    (record,) = (await db.scalars(select(AuditRecord).where(
        AuditRecord.entity_type == "packaging"))).all()
    assert record.after["requalified_until"] == "2027-03-31"
    bad = await client.post(f"{API}/packaging", json={
        "name": "x", "qualified_hold_h": 96, "requalified_until": "31/03/2027"})
    assert bad.status_code == 422


async def test_a_shipment_packed_after_the_requalification_is_refused(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    world = await _world(client)
    packaging = await _packaging(client, "Dry shipper 10d", date(2026, 11, 20))
    await f.logger(client, "LOG-1")
    # Packed on the last qualified day (UTC, late in the evening): accepted.
    last_day = datetime(2026, 11, 20, 23, 59, tzinfo=UTC)
    ok = await client.post(f"{API}/shipments",
                           json=_shipment(world, packaging["id"], last_day, "SHP-OK", "LOG-1"))
    assert ok.status_code == 201, ok.text
    # Packed at midnight UTC the next day: refused, naming the packaging and the day.
    await f.logger(client, "LOG-2")
    after = await client.post(f"{API}/shipments", json=_shipment(
        world, packaging["id"], datetime(2026, 11, 21, 0, 0, tzinfo=UTC), "SHP-LATE", "LOG-2"))
    assert after.status_code == 422
    problem = after.json()
    assert after.headers["content-type"].startswith("application/problem+json")
    assert problem["errors"] == [{"field": "packaging_id", "message": problem["detail"]}]
    assert problem["detail"] == (
        f"packaging_id: packaging 'Dry shipper 10d' ({packaging['id']}) is requalified only "
        "until 2026-11-20; the shipment is packed on 2026-11-21")
    # Nothing was stored for the refused shipment.
    refs = [s["reference"] for s in (await client.get(f"{API}/shipments")).json()["items"]]
    assert refs == ["SHP-OK"]
    # Packaging without a requalification date is never refused.
    plain = await _packaging(client, "Passive 2-8", None)
    free = await client.post(f"{API}/shipments", json=_shipment(
        world, plain["id"], datetime(2030, 1, 1, tzinfo=UTC), "SHP-FREE", "LOG-2"))
    assert free.status_code == 201, free.text


async def test_the_fleet_shows_packaging_running_out_within_30_days(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    today = datetime.now(UTC).date()
    world = await _world(client)
    expired = await _packaging(client, "Expired", today - timedelta(days=1))
    soon = await _packaging(client, "Soon", today + timedelta(days=30))
    await _packaging(client, "Later", today + timedelta(days=31))
    await _packaging(client, "Never", None)
    await f.logger(client, "LOG-1")
    await f.post(client, "/shipments", _shipment(
        world, soon["id"], datetime.now(UTC) - timedelta(hours=1), "SHP-1", "LOG-1"))
    due = (await client.get(f"{API}/packaging/requalification-due")).json()
    assert [(p["name"], p["days_left"], p["active_shipments"]) for p in due] == [
        ("Expired", -1, 0), ("Soon", 30, 1)]
    assert due[0]["id"] == expired["id"]
    assert due[1]["requalified_until"] == (today + timedelta(days=30)).isoformat()
    wider = (await client.get(f"{API}/packaging/requalification-due?within_days=31")).json()
    assert [p["name"] for p in wider] == ["Expired", "Soon", "Later"]
    # A site key sees only the packaging of its own site's shipments.
    mine = bearer(await make_key(client, "site", world["destination"]))
    other = bearer(await make_key(client, "site", await f.site(client, "Elsewhere", "DE")))
    seen = (await client.get(f"{API}/packaging/requalification-due", headers=mine)).json()
    assert [(p["name"], p["active_shipments"]) for p in seen] == [("Soon", 1)]
    assert (await client.get(f"{API}/packaging/requalification-due", headers=other)).json() == []
