"""Fleet rows people can read: site names and countries, the lane, the whole stability budget and
where each shipment is on its lane (`whereabouts`), in the list and in one shipment."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.services import fleet
from tests import factories as f
from tests.api import dashboard_world as w

URL = "/api/v1/shipments"
WAYPOINTS = [
    {"name": "AMS", "lat": 52.31, "lon": 4.76, "radius_km": 8, "dwell_allowance_h": 6},
    {"name": "FRA hub", "lat": 50.033, "lon": 8.57, "radius_km": 10, "dwell_allowance_h": 8},
    {"name": "BOS customs", "lat": 42.36, "lon": -71.01, "radius_km": 5, "dwell_allowance_h": 8},
]


async def test_rows_name_sites_lane_budget_and_the_current_stop_or_leg(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    world = await w.fleet(client, ["ON-LEG", "AT-HUB", "PACKED", "NO-FIX", "DONE"],
                          waypoints=WAYPOINTS, name="AMS-FRA-BOS")
    s = {ref: v["id"] for ref, v in world["shipments"].items()}
    last = f.T0 + timedelta(hours=3)
    for ref in ("ON-LEG", "AT-HUB", "NO-FIX", "DONE"):
        ok = await client.post(f"{URL}/{s[ref]}/events", json={
            "type": "departed", "at": (f.T0 + timedelta(hours=1)).isoformat()})
        assert ok.status_code == 201, ok.text
    done = await client.post(f"{URL}/{s['DONE']}/events", json={
        "type": "delivered", "at": (f.T0 + timedelta(hours=30)).isoformat()})
    assert done.status_code == 201, done.text
    # Near Cologne (between the airport and the hub); 2 km from the hub's centre; no position.
    await w.set_state(db, s["ON-LEG"], last_reading_ts=last, last_temp_c=5.0,
                      last_lat=50.94, last_lon=6.96, stability_budget_used_s=900.0)
    await w.set_state(db, s["AT-HUB"], last_reading_ts=last, last_temp_c=5.0,
                      last_lat=50.05, last_lon=8.55)
    await w.set_state(db, s["NO-FIX"], last_reading_ts=last, last_temp_c=5.0)

    r = await client.get(URL, params={"sort": "created"})
    assert r.status_code == 200, r.text
    rows = {i["reference"]: i for i in r.json()["items"]}
    for row in rows.values():
        assert (row["origin_site_name"], row["origin_country"]) == ("Leiden CTU", "NL")
        assert (row["destination_site_name"], row["destination_country"]) == (
            "Boston infusion centre", "US")
        assert row["lane_name"] == "AMS-FRA-BOS"
        assert row["stability_budget_s"] == 3600
    assert rows["ON-LEG"]["stability_budget_used_s"] == 900.0
    assert rows["ON-LEG"]["stability_budget_left_s"] == 2700.0
    assert rows["ON-LEG"]["whereabouts"] == {
        "kind": "leg", "label": "AMS → FRA hub", "waypoint": None, "from_waypoint": "AMS",
        "to_waypoint": "FRA hub"}
    assert rows["AT-HUB"]["whereabouts"] == {
        "kind": "stop", "label": "at FRA hub", "waypoint": "FRA hub", "from_waypoint": None,
        "to_waypoint": None}
    assert rows["PACKED"]["whereabouts"]["label"] == "packed at Leiden CTU"
    assert rows["NO-FIX"]["whereabouts"]["label"] == "in transit, no position yet"
    assert rows["DONE"]["whereabouts"] == {
        "kind": "destination", "label": "delivered to Boston infusion centre", "waypoint": None,
        "from_waypoint": None, "to_waypoint": None}

    one = (await client.get(f"{URL}/{s['ON-LEG']}")).json()
    for key in ("origin_site_name", "destination_site_name", "origin_country", "lane_name",
                "stability_budget_s", "whereabouts"):
        assert one[key] == rows["ON-LEG"][key]


async def test_a_lane_without_waypoints_and_a_fleet_on_two_lanes(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    bare = await w.fleet(client, ["BARE"], waypoints=[], name="direct")
    other = await w.fleet(client, ["ROUTED"], waypoints=WAYPOINTS, name="via FRA")
    await client.post(f"{URL}/{bare['shipments']['BARE']['id']}/events", json={
        "type": "departed", "at": (f.T0 + timedelta(hours=1)).isoformat()})
    await w.set_state(db, bare["shipments"]["BARE"]["id"], last_reading_ts=f.T0,
                      last_lat=50.0, last_lon=8.0)
    rows = {i["reference"]: i for i in (await client.get(URL)).json()["items"]}
    assert rows["BARE"]["lane_name"] == "direct"
    assert rows["BARE"]["whereabouts"]["label"] == "in transit"
    assert rows["ROUTED"]["lane_name"] == "via FRA"
    assert rows["ROUTED"]["whereabouts"]["label"] == "packed at Leiden CTU"
    assert other["lane_id"] != bare["lane_id"]


async def test_remembered_sites_and_lanes_are_forgotten_at_capacity(
    client: httpx.AsyncClient, db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sites and lanes are remembered per process (they never change); past its capacity the
    memory starts again, and every row still gets its names."""
    first = await w.fleet(client, ["FIRST"], waypoints=WAYPOINTS, name="one")
    second = await w.fleet(client, ["SECOND"], waypoints=[], name="two")
    monkeypatch.setattr(fleet, "_CAPACITY", 3)
    monkeypatch.setattr(fleet, "_sites", {})
    monkeypatch.setattr(fleet, "_lanes", {})
    one = (await client.get(f"{URL}/{first['shipments']['FIRST']['id']}")).json()
    assert (one["lane_name"], one["origin_site_name"]) == ("one", "Leiden CTU")
    assert set(fleet._lanes) == {uuid.UUID(first["lane_id"])}
    # Two more sites would not fit: the memory starts again with what this answer needs.
    two = (await client.get(f"{URL}/{second['shipments']['SECOND']['id']}")).json()
    assert (two["lane_name"], two["destination_site_name"]) == ("two", "Boston infusion centre")
    assert set(fleet._lanes) == {uuid.UUID(second["lane_id"])}
    assert len(fleet._sites) == 2
    rows = {i["reference"]: i for i in (await client.get(URL)).json()["items"]}
    assert {r: rows[r]["lane_name"] for r in rows} == {"FIRST": "one", "SECOND": "two"}
    assert {r: rows[r]["whereabouts"]["label"] for r in rows} == {
        "FIRST": "packed at Leiden CTU", "SECOND": "packed at Leiden CTU"}
