"""Contingency events through the API and the engine: `recharged` restarts the hold clock,
`rerouted` puts the shipment on another lane from its time (real database, real engine)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.models import AuditRecord
from tests import factories as f
from tests.api.keys import bearer, make_key
from tests.db.engine_support import Clock, alerts_of, round_, state_of

T0 = f.T0
API = "/api/v1"
# An alternative lane AMS → FRA → BOS: 20 h expected, a customs depot at FRA (4 h allowed).
ALT_WAYPOINTS = [
    {"name": "FRA customs depot", "lat": 50.07, "lon": 8.49, "radius_km": 2, "dwell_allowance_h": 4},
    {"name": "BOS", "lat": 42.36, "lon": -71.01, "radius_km": 5, "dwell_allowance_h": 2},
]


def h(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


class Trip:
    """A 2–8 °C shipment with a 40 h hold packed at T0, departed at +1 h, and keys."""

    def __init__(self, client: httpx.AsyncClient, shipment: dict[str, Any],
                 keys: dict[str, dict[str, str]]) -> None:
        self.client, self.shipment, self.keys, self.id = client, shipment, keys, shipment["id"]

    async def event(self, type_: str, at: float, role: str = "coordinator",
                    **extra: Any) -> httpx.Response:
        return await self.client.post(f"{API}/shipments/{self.id}/events",
                                      json={"type": type_, "at": h(at), **extra},
                                      headers=self.keys[role])

    async def ok(self, type_: str, at: float, **extra: Any) -> dict[str, Any]:
        response = await self.event(type_, at, **extra)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def detail(self) -> dict[str, Any]:
        return dict((await self.client.get(f"{API}/shipments/{self.id}")).json())


@pytest.fixture
async def trip(client: httpx.AsyncClient, db: AsyncSession) -> Trip:
    shipment = await f.shipment_setup(client, hold_h=40.0, departed_at=h(1))
    keys = {"admin": {}, "coordinator": bearer(await make_key(client, "coordinator")),
            "qp": bearer(await make_key(client, "qp")),
            "site": bearer(await make_key(client, "site", shipment["destination_site_id"]))}
    return Trip(client, shipment, keys)


async def _alt_lane(client: httpx.AsyncClient, trip: Trip, destination: str | None = None) -> str:
    return await f.lane(client, trip.shipment["origin_site_id"],
                        destination or trip.shipment["destination_site_id"], name="AMS-FRA-BOS",
                        expected_transit_h=20, max_transit_h=30, waypoints=ALT_WAYPOINTS)


async def test_a_recharge_restarts_the_hold_clock_and_clears_the_risk(
    trip: Trip, engine: AsyncEngine, db: AsyncSession
) -> None:
    # A 20 h customs hold at BOS customs (8 h allowed) from +10 h: arrival +43 h, deadline +40 h.
    await trip.ok("customs_hold", 10)
    clock = Clock(T0 + timedelta(hours=30))
    await round_(engine, clock)
    state = await state_of(db, trip.id)
    assert state.margin_h == pytest.approx(-3.0)
    (risk,) = [a for a in await alerts_of(db, trip.id) if a.kind == "hold_time_at_risk"]
    assert (risk.state, risk.severity) == ("open", "critical")
    # Re-iced at the customs depot at +29 h: the clock restarts there.
    event = await trip.ok("recharged", 29, note="re-iced at BOS customs depot, 12 kg dry ice")
    assert (event["type"], event["lane_id"], event["recorded_by"].startswith("key:")) == (
        "recharged", None, True)
    detail = await trip.detail()
    assert detail["status"] == "customs_hold" and detail["recharged_at"] == "2026-11-21T13:00:00Z"
    assert detail["hold_deadline"] == "2026-11-23T05:00:00Z"  # +29 h + 40 h, before evaluation
    await round_(engine, clock)
    state = await state_of(db, trip.id)
    assert state.hold_deadline == T0 + timedelta(hours=69)
    assert state.margin_h == pytest.approx(26.0)  # still held: arrival +43 h
    (risk,) = [a for a in await alerts_of(db, trip.id) if a.kind == "hold_time_at_risk"]
    assert risk.state == "resolved" and risk.resolution.startswith("hold-time margin recovered")
    audit = (await db.scalars(select(AuditRecord).where(
        AuditRecord.action == "event.recharged"))).one()
    assert audit.before["recharged_at"] is None
    assert audit.after["recharged_at"] == "2026-11-21T13:00:00+00:00"
    assert audit.reason == "re-iced at BOS customs depot, 12 kg dry ice"


async def test_only_a_coordinator_records_contingencies(trip: Trip) -> None:
    lane = await _alt_lane(trip.client, trip)
    for role in ("admin", "site", "qp"):
        for body in ({"type": "recharged"}, {"type": "rerouted", "lane_id": lane}):
            response = await trip.event(body.pop("type"), 5, role=role, **body)
            assert response.status_code == 403, (role, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
    assert (await trip.detail())["recharged_at"] is None


async def test_contingencies_fit_the_chain(trip: Trip) -> None:
    lane = await _alt_lane(trip.client, trip)
    missing = await trip.event("rerouted", 5)
    assert missing.status_code == 422 and "lane_id" in missing.text
    stray = await trip.event("recharged", 5, lane_id=lane)
    assert stray.status_code == 422 and "only a 'rerouted' event names a lane" in stray.text
    same = await trip.event("rerouted", 5, lane_id=trip.shipment["lane_id"])
    assert same.status_code == 409 and "already on lane" in same.text
    unknown = await trip.event("rerouted", 5, lane_id="00000000-0000-4000-8000-000000000000")
    assert unknown.status_code == 422 and "no such lane" in unknown.text
    before_packing = await trip.event("recharged", -1)
    assert before_packing.status_code == 422
    # Recorded after later events, a contingency takes its place in time.
    await trip.ok("customs_hold", 10)
    await trip.ok("customs_released", 20)
    await trip.ok("recharged", 15)
    events = (await trip.detail())["events"]
    assert [(e["type"], e["at"]) for e in events] == [
        ("customs_hold", "2026-11-20T18:00:00Z"), ("recharged", "2026-11-20T23:00:00Z"),
        ("customs_released", "2026-11-21T04:00:00Z")]
    await trip.ok("delivered", 30)
    after = await trip.event("recharged", 31)
    assert after.status_code == 409 and "cannot follow status 'delivered'" in after.text


async def test_a_reroute_moves_the_lane_the_destination_and_the_expected_arrival(
    client: httpx.AsyncClient, trip: Trip, engine: AsyncEngine, db: AsyncSession
) -> None:
    backup = await f.site(client, "Cambridge backup pharmacy", "US")
    lane = await _alt_lane(client, trip, destination=backup)
    planned, old_destination = trip.shipment["lane_id"], trip.shipment["destination_site_id"]
    event = await trip.ok("rerouted", 5, lane_id=lane, note="BOS hub closed: via FRA")
    assert event["lane_id"] == lane
    detail = await trip.detail()
    assert (detail["lane_id"], detail["planned_lane_id"], detail["destination_site_id"],
            detail["status"]) == (lane, planned, backup, "in_transit")
    await round_(engine, Clock(T0 + timedelta(hours=6)))
    assert (await state_of(db, trip.id)).expected_arrival == T0 + timedelta(hours=25)
    # The site it now goes to sees it, with the lanes it travels; the old destination no longer.
    backup_key = bearer(await make_key(client, "site", backup))
    seen = await client.get(f"{API}/shipments/{trip.id}", headers=backup_key)
    assert seen.status_code == 200
    lanes = {x["id"] for x in (await client.get(f"{API}/lanes", headers=backup_key)).json()["items"]}
    assert {planned, lane} <= lanes
    gone = await client.get(f"{API}/shipments/{trip.id}", headers=trip.keys["site"])
    assert gone.status_code == 404
    audit = (await db.scalars(select(AuditRecord).where(
        AuditRecord.action == "event.rerouted"))).one()
    assert (audit.before["lane_id"], audit.after["lane_id"]) == (planned, lane)
    assert (audit.before["destination_site_id"], audit.after["destination_site_id"]) == (
        old_destination, backup)
    # Voiding the reroute (recorded in error) puts it back on the lane of registration.
    voided = await client.post(
        f"{API}/shipments/{trip.id}/events/{event['id']}/corrections",
        json={"void": True, "reason": "entered on the wrong shipment"},
        headers=trip.keys["coordinator"])
    assert voided.status_code == 201, voided.text
    detail = await trip.detail()
    assert (detail["lane_id"], detail["destination_site_id"]) == (planned, old_destination)


async def test_the_report_shows_recharges_reroutes_and_a_hold_that_ran_out(
    client: httpx.AsyncClient, trip: Trip, db: AsyncSession
) -> None:
    lane = await _alt_lane(client, trip)
    await trip.ok("rerouted", 5, lane_id=lane)
    await trip.ok("recharged", 45, note="re-iced late")  # the 40 h hold ran out at +40 h
    await trip.ok("delivered", 50)
    report = (await client.get(f"{API}/shipments/{trip.id}/report")).json()
    pk = report["packaging"]
    assert (pk["hold_deadline"], pk["hold_started_at"], pk["recharged_at"], pk["hold_ran_out_at"]) == (
        "2026-11-23T21:00:00Z", "2026-11-22T05:00:00Z", ["2026-11-22T05:00:00Z"],
        ["2026-11-22T00:00:00Z"])
    (reroute,) = report["lane"]["reroutes"]
    assert (reroute["at"], reroute["lane_id"], reroute["name"], reroute["expected_transit_h"]) == (
        "2026-11-20T13:00:00Z", lane, "AMS-FRA-BOS", 20)
    assert report["lane"]["id"] == trip.shipment["lane_id"]  # the lane of registration
    chain = {e["type"]: e for e in report["custody_chain"]}
    assert chain["rerouted"]["lane_name"] == "AMS-FRA-BOS"
    assert ("qualified hold time ran out at 2026-11-22T00:00:00+00:00 before the shipper was "
            "recharged") in report["verdict"]["reasons"]
    pdf = await client.get(f"{API}/shipments/{trip.id}/report", params={"format": "pdf"})
    assert pdf.status_code == 200
    epcis = await client.get(f"{API}/shipments/{trip.id}/report", params={"format": "epcis"})
    steps = [(e["bizStep"], e.get("disposition")) for e in epcis.json()["epcisBody"]["eventList"]
             if e["bizStep"] in ("other", "transporting")]
    assert steps == [("transporting", "in_transit"), ("other", "in_transit")]
