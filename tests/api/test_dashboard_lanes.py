"""Lane performance: transit-time distribution vs the validated times, dwell, excursion rate."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests import factories as f
from tests.api import dashboard_world as w
from tests.api.keys import bearer, make_key

T0 = f.T0
AMS, BOS = (52.31, 4.76), (42.36, -71.01)


async def _deliver(client: httpx.AsyncClient, sid: str, depart_h: float, transit_h: float) -> None:
    for kind, at in (("departed", T0 + timedelta(hours=depart_h)),
                     ("delivered", T0 + timedelta(hours=depart_h + transit_h))):
        ok = await client.post(f"/api/v1/shipments/{sid}/events",
                               json={"type": kind, "at": at.isoformat()})
        assert ok.status_code == 201, ok.text


async def test_lane_performance_from_delivered_history(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    world = await w.fleet(client, ["H-1", "H-2", "H-3", "H-4", "OPEN-5"])
    s = world["shipments"]
    for ref, transit in (("H-1", 28.0), ("H-2", 30.0), ("H-3", 34.0), ("H-4", 50.0)):
        await _deliver(client, s[ref]["id"], 1.0, transit)
    # H-1 waits 2 h at AMS (positions every 10 min inside its 5 km radius), then flies.
    fixes = [AMS] * 13 + [(50.0, -20.0), BOS, BOS]
    await w.add_readings(db, s["H-1"]["id"], s["H-1"]["logger_ids"][0],
                         w.minutes(T0 + timedelta(hours=1), [5.0] * len(fixes), 600),
                         positions=fixes)
    # H-3 sits 9 h at BOS customs (allowance 8 h).
    fixes = [AMS, (50.0, -20.0)] + [BOS] * 10
    await w.add_readings(db, s["H-3"]["id"], s["H-3"]["logger_ids"][0],
                         w.minutes(T0 + timedelta(hours=1), [5.0] * len(fixes), 3600),
                         positions=fixes)
    await w.add_excursion_and_alert(db, s["H-2"]["id"], s["H-2"]["logger_ids"][0],
                                    T0 + timedelta(hours=3), T0 + timedelta(hours=4), 9.5)
    # An excursion on a shipment still on its way does not count: only delivered history does.
    await w.add_excursion_and_alert(db, s["OPEN-5"]["id"], s["OPEN-5"]["logger_ids"][0],
                                    T0 + timedelta(hours=3), T0 + timedelta(hours=4), 9.5)

    qp = bearer(await make_key(client, "qp"))
    response = await client.get(f"/api/v1/lanes/{world['lane_id']}/performance", headers=qp)
    assert response.status_code == 200, response.text
    perf = response.json()
    assert perf["name"] == "AMS-BOS" and perf["delivered_shipments"] == 4
    transit = perf["transit_h"]
    assert (transit["count"], transit["p50"], transit["max"]) == (4, 32.0, 50.0)
    assert transit["p95"] == pytest.approx(34.0 + 0.85 * 16.0)  # linear between ranks
    assert (transit["expected_h"], transit["max_allowed_h"]) == (30.0, 48.0)
    assert (transit["over_expected"], transit["over_max"]) == (2, 1)
    assert transit["within_validation"] is True  # p95 47.6 h is within the validated 48 h
    ams, bos = perf["dwell_h"]
    assert (ams["name"], ams["dwell_allowance_h"], ams["max"]) == ("AMS", 6.0, 2.0)
    assert ams["over_allowance"] == 0
    assert (bos["name"], bos["max"], bos["over_allowance"]) == ("BOS customs", 9.0, 1)
    assert perf["shipments_with_excursions"] == 1 and perf["excursion_rate"] == 0.25
    assert perf["alerts_by_kind"] == {"temperature_high": 1}

    recent = (await client.get(f"/api/v1/lanes/{world['lane_id']}/performance", params={
        "since": (T0 + timedelta(hours=40)).isoformat()})).json()
    assert recent["delivered_shipments"] == 1 and recent["transit_h"]["p50"] == 50.0

    site = bearer(await make_key(client, "site", world["origin"]))
    denied = await client.get(f"/api/v1/lanes/{world['lane_id']}/performance", headers=site)
    assert denied.status_code == 403
    missing = await client.get("/api/v1/lanes/00000000-0000-0000-0000-000000000000/performance")
    assert missing.status_code == 404


async def test_lane_without_history(client: httpx.AsyncClient, db: AsyncSession) -> None:
    world = await w.fleet(client, ["NEW-1"])
    perf = (await client.get(f"/api/v1/lanes/{world['lane_id']}/performance")).json()
    assert perf["delivered_shipments"] == 0
    assert perf["transit_h"]["p50"] is None and perf["transit_h"]["within_validation"] is False
    assert perf["excursion_rate"] is None
    assert [d["count"] for d in perf["dwell_h"]] == [0, 0]
