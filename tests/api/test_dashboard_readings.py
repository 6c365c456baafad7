"""One shipment's readings (raw and resampled, gaps never bridged) and its GeoJSON track."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests import factories as f
from tests.api import dashboard_world as w
from tests.api.keys import bearer, make_key

T0 = f.T0


async def _shipment(client: httpx.AsyncClient, db: AsyncSession) -> dict[str, Any]:
    """One logger at 1-min interval (max gap 3 min): 0..29 min, a 20-min gap, 50..59 min."""
    world = await w.fleet(client, ["SHP-R"])
    s = world["shipments"]["SHP-R"]
    temps = [4.0 + (i % 5) for i in range(30)]
    points = w.minutes(T0, temps) + w.minutes(T0 + timedelta(minutes=50), [5.0] * 9 + [11.0])
    positions = [(52.31 - i * 0.05, 4.76 - i * 0.5) for i in range(len(points))]
    await w.add_readings(db, s["id"], s["logger_ids"][0], points, positions=positions)
    return {**world, "shipment": s, "points": points}


async def test_raw_readings_in_device_time_order_paginated(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    world = await _shipment(client, db)
    url = f"/api/v1/shipments/{world['shipment']['id']}/readings"
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 7}
    for _ in range(10):
        page = (await client.get(url, params=params)).json()
        seen += page["items"]
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert [r["temp_c"] for r in seen] == [t for _, t in world["points"]]
    assert seen[0]["ts"] == "2026-11-20T08:00:00Z"
    assert {"logger_id", "ts", "temp_c", "lat", "lon", "battery_pct", "seq",
            "received_at"} <= set(seen[0])
    window = (await client.get(url, params={
        "from": (T0 + timedelta(minutes=10)).isoformat(),
        "to": (T0 + timedelta(minutes=12)).isoformat()})).json()
    assert [r["ts"] for r in window["items"]] == ["2026-11-20T08:10:00Z", "2026-11-20T08:11:00Z"]
    empty = (await client.get(url, params={"logger_id": "nobody"})).json()
    assert empty["items"] == []
    wrong = await client.get(url, params={"from": T0.isoformat(), "to": T0.isoformat()})
    assert wrong.status_code == 422
    naive = await client.get(url, params={"from": "2026-11-20T08:00:00"})
    assert naive.status_code == 422


async def test_resampled_min_mean_max_and_gaps_stay_gaps(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    world = await _shipment(client, db)
    url = f"/api/v1/shipments/{world['shipment']['id']}/readings"
    r = (await client.get(url, params={
        "every": "15min", "from": T0.isoformat(),
        "to": (T0 + timedelta(hours=1)).isoformat()})).json()
    assert r["every"] == "15min"
    assert [b["ts"] for b in r["items"]] == [
        "2026-11-20T08:00:00Z", "2026-11-20T08:15:00Z", "2026-11-20T08:30:00Z",
        "2026-11-20T08:45:00Z"]
    first = r["items"][0]
    temps = [4.0 + (i % 5) for i in range(15)]
    assert (first["min_c"], first["max_c"], first["count"]) == (4.0, 8.0, 15)
    assert abs(first["mean_c"] - sum(temps) / 15) < 1e-12
    # 08:30–08:45 has no reading at all: null, not a line drawn across it.
    assert r["items"][2] == {"ts": "2026-11-20T08:30:00Z", "min_c": None, "mean_c": None,
                             "max_c": None, "count": 0}
    assert r["items"][3]["max_c"] == 11.0 and r["items"][3]["count"] == 10
    # Rule 2: the last reading at 08:29 holds for the max gap (3 min), unknown until 08:50.
    assert r["gaps"] == [{"start": "2026-11-20T08:32:00Z", "end": "2026-11-20T08:50:00Z",
                          "duration_s": 1080.0, "logger_id": None}]
    assert r["logger_gaps"][0]["logger_id"] == world["shipment"]["logger_ids"][0]
    one_min = (await client.get(url, params={
        "every": "1min", "from": T0.isoformat(),
        "to": (T0 + timedelta(hours=1)).isoformat()})).json()
    assert len(one_min["items"]) == 60
    assert one_min["items"][40]["count"] == 0 and one_min["items"][40]["mean_c"] is None
    bad = await client.get(url, params={"every": "7min"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "every"
    other = await client.get(url, params={"every": "1h", "logger_id": "not-on-it"})
    assert other.status_code == 422


async def test_gaps_of_several_loggers_count_when_all_are_silent(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    shipment = await f.shipment_setup(client, logger_ids=("A-1", "A-2"))
    sid = shipment["id"]
    # A-1 stops after 20 min; A-2 is silent from 10 to 40 min: unknown only from 23 to 40.
    await w.add_readings(db, sid, "A-1", w.minutes(T0, [5.0] * 21, 60))
    await w.add_readings(db, sid, "A-2", w.minutes(T0, [5.0] * 11, 60)
                         + w.minutes(T0 + timedelta(minutes=40), [5.0] * 20, 60))
    # Default reporting interval 300 s: the max gap is 15 min for both loggers.
    r = (await client.get(f"/api/v1/shipments/{sid}/readings", params={
        "every": "5min", "from": T0.isoformat(),
        "to": (T0 + timedelta(hours=1)).isoformat()})).json()
    assert [(g["start"], g["end"]) for g in r["gaps"]] == [
        ("2026-11-20T08:35:00Z", "2026-11-20T08:40:00Z")]
    assert {g["logger_id"] for g in r["logger_gaps"]} == {"A-1", "A-2"}
    only_one = (await client.get(f"/api/v1/shipments/{sid}/readings", params={
        "every": "5min", "logger_id": "A-2", "from": T0.isoformat(),
        "to": (T0 + timedelta(hours=1)).isoformat()})).json()
    assert [(g["start"], g["end"]) for g in only_one["gaps"]] == [
        ("2026-11-20T08:25:00Z", "2026-11-20T08:40:00Z")]


async def test_track_is_geojson_with_lane_and_corridor(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    world = await _shipment(client, db)
    response = await client.get(f"/api/v1/shipments/{world['shipment']['id']}/track")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    fc = response.json()
    assert fc["type"] == "FeatureCollection"
    kinds = [feat["properties"]["kind"] for feat in fc["features"]]
    assert kinds == ["corridor", "lane", "waypoint", "waypoint", "track", "position"]
    by = {feat["properties"]["kind"]: feat for feat in fc["features"]}
    track = by["track"]["geometry"]
    assert track["type"] == "LineString" and len(track["coordinates"]) == 40
    assert track["coordinates"][0] == [4.76, 52.31]  # GeoJSON order: [lon, lat]
    assert by["position"]["geometry"]["coordinates"] == track["coordinates"][-1]
    assert by["lane"]["geometry"]["coordinates"] == [[4.76, 52.31], [-71.01, 42.36]]
    corridor = by["corridor"]["geometry"]
    assert corridor["type"] == "MultiPolygon"
    ring = corridor["coordinates"][0][0]
    assert ring[0] == ring[-1] and len(ring) > 20
    # The corridor extends about corridor_km (100 km ≈ 0.9° of latitude) around the waypoints.
    lats = [p[1] for p in ring]
    assert 53.1 < max(lats) < 53.3 and 41.4 < min(lats) < 41.6
    waypoint = [feat for feat in fc["features"] if feat["properties"]["kind"] == "waypoint"][1]
    assert waypoint["properties"] == {"kind": "waypoint", "position": 1, "name": "BOS customs",
                                      "radius_km": 5.0, "dwell_allowance_h": 8.0}


async def test_other_sites_cannot_read_readings_or_track(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    world = await _shipment(client, db)
    elsewhere = await f.site(client, "Elsewhere", "DE")
    outsider = bearer(await make_key(client, "site", elsewhere))
    sid = world["shipment"]["id"]
    for path in ("readings", "readings?every=1h", "track"):
        denied = await client.get(f"/api/v1/shipments/{sid}/{path}", headers=outsider)
        assert denied.status_code == 404, path
    insider = bearer(await make_key(client, "site", world["origin"]))
    assert (await client.get(f"/api/v1/shipments/{sid}/track", headers=insider)).status_code == 200
