"""Readiness and the departure gate through the API on the real database: the lane's required
documents, their expiry against the expected arrival, the packaging's requalification, and a
coordinator's override (audited, on the event, in the release report)."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import AuditRecord
from tests import factories as f
from tests.api.keys import bearer, make_key
from tests.api.test_documents import PDF, upload

API = "/api/v1"
T0 = f.T0
REQUIRED = ["import_license", "qp_release_plan"]


def h(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def z(hours: float) -> str:
    """As the API answers it."""
    return h(hours).replace("+00:00", "Z")


class World:
    def __init__(self, client: httpx.AsyncClient, shipment: dict[str, Any],
                 keys: dict[str, dict[str, str]]) -> None:
        self.client, self.shipment, self.keys, self.id = client, shipment, keys, shipment["id"]

    async def depart(self, at: float, role: str = "coordinator", **extra: Any) -> httpx.Response:
        return await self.client.post(f"{API}/shipments/{self.id}/events",
                                      json={"type": "departed", "at": h(at), **extra},
                                      headers=self.keys[role])

    async def readiness(self) -> dict[str, Any]:
        response = await self.client.get(f"{API}/shipments/{self.id}/readiness")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def attach(self, kind: str, expires: float | None = None) -> str:
        fields = {"expires_at": h(expires)} if expires is not None else {}
        response = await upload(self.client, self.id, PDF, kind=kind, **fields)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


@pytest.fixture
async def world(client: httpx.AsyncClient, db: AsyncSession) -> World:
    origin = await f.site(client, "Leiden CTU", "NL")
    destination = await f.site(client, "Boston infusion centre", "US")
    lane = await f.lane(client, origin, destination, required_documents=REQUIRED)
    shipment = await f.post(client, "/shipments", {
        "reference": "SHP-1", "lane_id": lane,
        "product_id": await f.refrigerated_product(client),
        "packaging_id": await f.packaging(client), "logger_ids": [await f.logger(client, "LOG-1")],
        "packed_at": T0.isoformat()})
    keys = {"admin": {}, "coordinator": bearer(await make_key(client, "coordinator")),
            "site": bearer(await make_key(client, "site", origin))}
    return World(client, shipment, keys)


async def test_the_lane_lists_its_required_documents(
    client: httpx.AsyncClient, world: World
) -> None:
    lane = (await client.get(f"{API}/lanes/{world.shipment['lane_id']}")).json()
    assert lane["required_documents"] == REQUIRED
    twice = await client.post(f"{API}/lanes", json={
        **{k: lane[k] for k in ("name", "origin_site_id", "destination_site_id",
                                "expected_transit_h", "max_transit_h", "corridor_km")},
        "required_documents": ["import_license", "import_license"]})
    assert twice.status_code == 422
    assert twice.json()["errors"][0]["field"] == "required_documents"


async def test_departure_waits_for_the_documents(world: World, db: AsyncSession) -> None:
    judged = await world.readiness()
    assert (judged["ready"], judged["missing"], judged["expired"]) == (False, REQUIRED, [])
    assert judged["required_documents"] == REQUIRED
    refused = await world.depart(1)
    assert refused.status_code == 409
    problem = refused.json()
    assert (problem["missing"], problem["expired"]) == (REQUIRED, [])
    assert problem["detail"] == (
        "the shipment is not ready to depart (missing: import_license, qp_release_plan); a "
        "coordinator may record the departure anyway with override_reason")
    await world.attach("import_license")
    # The QP release plan runs out 10 h after departure, before the expected arrival (+31 h).
    stale = await world.attach("qp_release_plan", expires=11)
    refused = (await world.depart(1)).json()
    assert (refused["missing"], refused["expired"]) == ([], [
        {"kind": "qp_release_plan", "expires_at": z(11),
         "document_id": stale}])
    await world.attach("qp_release_plan", expires=31)  # valid at the arrival itself
    departed = await world.depart(1)
    assert departed.status_code == 201, departed.text
    assert (departed.json()["override_reason"], departed.json()["override_unready"]) == (None, None)
    detail = (await world.client.get(f"{API}/shipments/{world.id}")).json()
    assert (detail["status"], detail["departed_at"]) == ("in_transit", z(1))
    after = await world.readiness()
    assert (after["ready"], after["expected_arrival"]) == (True, z(31))
    overrides = (await db.scalars(select(AuditRecord).where(
        AuditRecord.action == "readiness.override"))).all()
    assert overrides == []


async def test_a_coordinator_may_depart_anyway_with_a_reason(
    world: World, db: AsyncSession
) -> None:
    await world.attach("import_license", expires=5)
    for role in ("site", "admin"):
        forbidden = await world.depart(1, role=role, override_reason="urgent patient")
        assert forbidden.status_code == 403, forbidden.text
    bad = await world.client.post(
        f"{API}/shipments/{world.id}/events",
        json={"type": "customs_hold", "at": h(1), "override_reason": "x"},
        headers=world.keys["coordinator"])
    assert bad.status_code == 422
    departed = await world.depart(1, override_reason="patient scheduled; licence renewal filed")
    assert departed.status_code == 201, departed.text
    event = departed.json()
    unready = {"missing": ["qp_release_plan"],
               "expired": [{"kind": "import_license", "expires_at": z(5),
                            "document_id": event["override_unready"]["expired"][0]["document_id"]}]}
    assert event["override_reason"] == "patient scheduled; licence renewal filed"
    assert event["override_unready"] == unready
    (record,) = (await db.scalars(select(AuditRecord).where(
        AuditRecord.action == "readiness.override"))).all()
    assert record.reason == "patient scheduled; licence renewal filed"
    assert record.after == {"event_id": event["id"], **unready}
    assert record.actor.startswith("key:")
    # The custody chain and the release report show it.
    events = (await world.client.get(f"{API}/shipments/{world.id}/events")).json()
    assert [(e["type"], e["override_reason"]) for e in events] == [
        ("departed", "patient scheduled; licence renewal filed")]
    report = (await world.client.get(f"{API}/shipments/{world.id}/report")).json()
    assert report["readiness_overrides"] == [{
        "event_id": event["id"], "at": z(1),
        "recorded_by": event["recorded_by"],
        "override_reason": "patient scheduled; licence renewal filed", **unready}]
    (chained,) = report["custody_chain"]
    assert chained["override_reason"] == "patient scheduled; licence renewal filed"
    (document,) = report["documents"]
    assert (document["kind"], document["sha256"], document["expires_at"]) == (
        "import_license", hashlib.sha256(PDF).hexdigest(), z(5))
    pdf = await world.client.get(f"{API}/shipments/{world.id}/report?format=pdf")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "override: patient scheduled; licence renewal filed" in " ".join(text.split())


async def test_packaging_lapsing_in_transit_blocks_the_departure(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    origin = await f.site(client, "Leiden CTU", "NL")
    destination = await f.site(client, "Boston infusion centre", "US")
    lane = await f.lane(client, origin, destination)  # no documents required
    packaging = await f.post(client, "/packaging", {
        "name": "LN2 dry shipper", "qualified_hold_h": 240,
        "requalified_until": T0.date().isoformat()})
    body = {"reference": "SHP-2", "lane_id": lane,
            "product_id": await f.refrigerated_product(client), "packaging_id": packaging["id"],
            "logger_ids": [await f.logger(client, "LOG-2")], "packed_at": T0.isoformat()}
    # Registered as departed at +1 h: arrival +31 h is past the requalification's last day.
    registered = await client.post(f"{API}/shipments", json={**body, "departed_at": h(1)})
    assert registered.status_code == 409
    assert registered.json()["expired"] == [{
        "kind": "packaging_requalification", "expires_at": z(16),  # T0 is 08:00
        "packaging_id": packaging["id"],
        "requalified_until": T0.date().isoformat()}]
    shipment = await f.post(client, "/shipments", body)
    judged = (await client.get(f"{API}/shipments/{shipment['id']}/readiness")).json()
    assert judged["ready"] is False
    assert [e["kind"] for e in judged["expired"]] == ["packaging_requalification"]
    coordinator = bearer(await make_key(client, "coordinator"))
    refused = await client.post(f"{API}/shipments/{shipment['id']}/events",
                                json={"type": "departed", "at": h(1)}, headers=coordinator)
    assert refused.status_code == 409
    assert "packaging_requalification" in refused.json()["detail"]
