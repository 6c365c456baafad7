"""Fleet overview: every filter, the risk ordering, cursor pagination, site scope, no reading scans."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import shipment_scope
from app.core.security import Principal
from app.dashboard import overview
from app.services import shipments as svc
from tests import factories as f
from tests.api import dashboard_world as w
from tests.api.keys import bearer, make_key

URL = "/api/v1/shipments"


async def _world(client: httpx.AsyncClient, db: AsyncSession) -> dict[str, Any]:
    world = await w.fleet(client, ["CRIT-1", "TIGHT-2", "EASY-3", "NOSTATE-4", "DONE-5",
                                   "WARN-6", "50%_odd"])
    s = world["shipments"]
    last = f.T0 + timedelta(hours=3)
    await w.set_state(db, s["CRIT-1"]["id"], margin_h=40.0, at_risk=True, open_alerts=2,
                      open_critical_alerts=1, last_reading_ts=last, last_temp_c=9.5,
                      last_lat=50.0, last_lon=8.5)
    await w.set_state(db, s["TIGHT-2"]["id"], margin_h=3.5, at_risk=True, open_alerts=0,
                      open_critical_alerts=0)
    await w.set_state(db, s["EASY-3"]["id"], margin_h=60.0, at_risk=False, open_alerts=0,
                      open_critical_alerts=0)
    await w.set_state(db, s["DONE-5"]["id"], margin_h=-5.0, at_risk=False, open_alerts=0,
                      open_critical_alerts=0)
    await w.set_state(db, s["WARN-6"]["id"], margin_h=60.0, at_risk=False, open_alerts=1,
                      open_critical_alerts=0)
    await w.set_state(db, s["50%_odd"]["id"], margin_h=70.0, at_risk=False, open_alerts=0,
                      open_critical_alerts=0)
    for ref in ("CRIT-1", "TIGHT-2", "EASY-3", "DONE-5", "WARN-6"):
        ok = await client.post(f"{URL}/{s[ref]['id']}/events", json={
            "type": "departed", "at": (f.T0 + timedelta(hours=1)).isoformat()})
        assert ok.status_code == 201, ok.text
    done = await client.post(f"{URL}/{s['DONE-5']['id']}/events", json={
        "type": "delivered", "at": (f.T0 + timedelta(hours=30)).isoformat()})
    assert done.status_code == 201
    return world


def refs(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["reference"] for item in response.json()["items"]]


async def test_risk_order_critical_then_smallest_margin_finished_last(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await _world(client, db)
    listed = refs(await client.get(URL))  # sort=risk is the default
    # Critical first; in-flight by margin (equal margins: more open alerts first, state-less
    # last); finished shipments after everything in flight, however small their margin.
    assert listed == ["CRIT-1", "TIGHT-2", "WARN-6", "EASY-3", "50%_odd", "NOSTATE-4", "DONE-5"]
    item = (await client.get(URL, params={"q": "CRIT"})).json()["items"][0]
    assert item["last_reading"] == {"ts": "2026-11-20T11:00:00Z", "temp_c": 9.5, "lat": 50.0,
                                    "lon": 8.5}
    assert item["margin_h"] == 40.0 and item["open_critical_alerts"] == 1
    assert item["hold_deadline"].startswith("2026-11-24T08:00:00")
    created = refs(await client.get(URL, params={"sort": "created"}))
    assert created == ["CRIT-1", "TIGHT-2", "EASY-3", "NOSTATE-4", "DONE-5", "WARN-6", "50%_odd"]


async def test_cursor_pages_walk_the_same_order(client: httpx.AsyncClient, db: AsyncSession) -> None:
    await _world(client, db)
    everything = refs(await client.get(URL))
    for sort in ("risk", "created"):
        walked: list[str] = []
        params: dict[str, Any] = {"limit": 2, "sort": sort}
        for _ in range(10):
            page = (await client.get(URL, params=params)).json()
            walked += [i["reference"] for i in page["items"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        expected = everything if sort == "risk" else sorted(everything, key=everything.index)
        assert sorted(walked) == sorted(expected) and len(walked) == len(set(walked))
        if sort == "risk":
            assert walked == everything
    bad = await client.get(URL, params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"


async def test_filters(client: httpx.AsyncClient, db: AsyncSession) -> None:
    world = await _world(client, db)

    async def q(**params: Any) -> set[str]:
        return set(refs(await client.get(URL, params=params)))

    assert await q(status="packed") == {"NOSTATE-4", "50%_odd"}
    assert await q(status=["packed", "delivered"]) == {"NOSTATE-4", "50%_odd", "DONE-5"}
    assert await q(at_risk="true") == {"CRIT-1", "TIGHT-2"}
    assert await q(at_risk="false") == {"EASY-3", "NOSTATE-4", "DONE-5", "WARN-6", "50%_odd"}
    assert await q(has_open_alerts="true") == {"CRIT-1", "WARN-6"}
    assert "CRIT-1" not in await q(has_open_alerts="false")
    assert await q(q="tight") == {"TIGHT-2"}
    # LIKE wildcards in the search text are literal characters.
    assert await q(q="50%") == {"50%_odd"}
    assert await q(q="_") == {"50%_odd"}
    assert await q(q="!o") == set()  # the LIKE escape character is literal too
    assert await q(lane_id=world["lane_id"]) == set(world["shipments"])
    assert await q(lane_id="00000000-0000-0000-0000-000000000000") == set()
    assert await q(site_id=world["origin"], status="in_transit", at_risk="true") == {
        "CRIT-1", "TIGHT-2"}
    invalid = await client.get(URL, params={"status": "lost"})
    assert invalid.status_code == 422
    assert (await client.get(URL, params={"sort": "colour"})).status_code == 422


async def test_site_key_sees_only_its_shipments(client: httpx.AsyncClient, db: AsyncSession) -> None:
    world = await _world(client, db)
    elsewhere = await f.site(client, "Elsewhere", "DE")
    outsider = bearer(await make_key(client, "site", elsewhere))
    assert refs(await client.get(URL, headers=outsider)) == []
    insider = bearer(await make_key(client, "site", world["destination"]))
    assert len(refs(await client.get(URL, headers=insider, params={"at_risk": "true"}))) == 2


async def test_overview_query_never_touches_readings(db: AsyncSession) -> None:
    """The plan of the overview query (risk order, filters) reads no reading partition."""
    admin = Principal(actor="t", role="admin")
    stmt = overview.filtered(shipment_scope(svc.summary_select(), admin),
                             statuses=["in_transit"], at_risk=True, has_open_alerts=True,
                             text="x")
    keys, _ = overview.sort_keys("risk")
    sql = stmt.order_by(*keys).limit(100).compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    plan = "\n".join(r[0] for r in (await db.execute(text(f"EXPLAIN {sql}"))).all())
    assert "shipment_state" in plan
    assert "readings" not in plan
