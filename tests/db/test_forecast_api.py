"""Forecasts through the engine and the API: stored per shipment, the lane spec below ten
deliveries, the lane's history from ten on (rebuilt at each delivery), `at_risk` and `sort=risk`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alerts.forecast.adapter import Where, lane_model, predict
from alerts.rules import LaneSpec, Waypoint
from app.core.db import make_sessionmaker
from app.core.handoff import enqueue_evaluation
from app.core.models import LaneForecastModel, Reading, ShipmentForecast, utcnow
from app.core.settings import Settings
from tests import factories as f
from tests.api.dashboard_world import add_readings, fleet, minutes
from tests.db.engine_support import Clock, round_
from tests.factories import T0, post

API = "/api/v1"
# tests.factories' lane: AMS (6 h) then BOS customs (8 h), expected 30 h, max 48 h.
LANE = LaneSpec(30.0, 48.0, 100.0, (Waypoint("AMS", 52.31, 4.76, 5, 6.0),
                                   Waypoint("BOS customs", 42.36, -71.01, 5, 8.0)))


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


async def _event(client: httpx.AsyncClient, sid: str, type_: str, at: datetime) -> None:
    await post(client, f"/shipments/{sid}/events", {"type": type_, "at": at.isoformat()})


async def test_lane_spec_forecast_below_ten_deliveries(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession
) -> None:
    world = await fleet(client, ["SHP-1"], hold_h=96.0)
    sid = world["shipments"]["SHP-1"]["id"]
    departed = T0 + timedelta(hours=1)
    await _event(client, sid, "departed", departed)
    now = departed + timedelta(hours=10)
    await round_(engine, Clock(now))
    body = (await client.get(f"{API}/shipments/{sid}")).json()
    expected = predict(lane_model(LANE), Where(departed, 0, departed, 0.0,
                                               T0 + timedelta(hours=96), None), now)
    assert body["forecast_basis"] == {"method": "lane_spec", "delivered_n": 0}
    assert body["on_time_probability"] == pytest.approx(expected.on_time_probability)
    assert body["arrival_p50"] == _iso(expected.arrival_p50)
    assert body["arrival_p90"] == _iso(expected.arrival_p90)
    # Log-normal, median 30 h: 10 h in, the median arrival is a little past departure + 30 h.
    assert departed + timedelta(hours=30) < expected.arrival_p50 < departed + timedelta(hours=31)
    listed = (await client.get(f"{API}/shipments")).json()["items"]
    assert [i["forecast_basis"] for i in listed] == [body["forecast_basis"]]
    assert listed[0]["arrival_p90"] == body["arrival_p90"]


async def test_a_shipment_not_yet_forecast_has_null_fields(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    await fleet(client, ["SHP-1"])
    (item,) = (await client.get(f"{API}/shipments")).json()["items"]
    assert [item[k] for k in ("on_time_probability", "arrival_p50", "arrival_p90",
                              "forecast_basis")] == [None, None, None, None]


async def test_lane_history_from_ten_deliveries_and_rebuilt_at_each(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession
) -> None:
    refs = [f"H-{i}" for i in range(11)] + ["LIVE"]
    world = await fleet(client, refs)
    ships = world["shipments"]
    start = T0 + timedelta(hours=1)
    for i in range(10):  # transit 20 + 2i hours: 20 … 38
        sid = ships[f"H-{i}"]["id"]
        await _event(client, sid, "departed", start)
        await _event(client, sid, "delivered", start + timedelta(hours=20 + 2 * i))
    live = ships["LIVE"]["id"]
    await _event(client, live, "departed", start)
    clock = Clock(start + timedelta(hours=25))
    await round_(engine, clock)
    body = (await client.get(f"{API}/shipments/{live}")).json()
    assert body["forecast_basis"] == {"method": "lane_history", "delivered_n": 10}
    # 25 h in: the deliveries that took longer are 26, 28 … 38 h (7): remainders 1 … 13 h.
    assert body["arrival_p50"] == _iso(start + timedelta(hours=32))
    stored = await db.scalar(select(LaneForecastModel))
    assert stored is not None and sorted(stored.totals_h) == [20.0 + 2 * i for i in range(10)]
    # A delivered one: certain, on time.
    h0 = (await client.get(f"{API}/shipments/{ships['H-0']['id']}")).json()
    assert (h0["on_time_probability"], h0["arrival_p50"], h0["arrival_p90"]) == (
        1.0, _iso(start + timedelta(hours=20)), _iso(start + timedelta(hours=20)))
    sid = ships["H-10"]["id"]
    await _event(client, sid, "departed", start)
    await _event(client, sid, "delivered", start + timedelta(hours=40))
    # The delivery rebuilds the lane's model at once; the others' forecasts follow at their
    # first re-check once theirs is older than FRESH (10 min).
    clock.set(clock.now + timedelta(minutes=11))
    await round_(engine, clock)
    body = (await client.get(f"{API}/shipments/{live}")).json()
    assert body["forecast_basis"] == {"method": "lane_history", "delivered_n": 11}
    db.expire_all()
    stored = await db.scalar(select(LaneForecastModel))
    assert stored is not None and stored.delivered_n == 11 and max(stored.totals_h) == 40.0


@pytest.fixture
async def strict_client(
    db: AsyncSession, settings: Settings, engine: AsyncEngine, admin_headers: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with COLDCHAIN_RISK_PROBABILITY = 0.5."""
    from app.api.main import create_app

    app = create_app(settings.model_copy(update={"risk_probability": 0.5}), engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers=admin_headers) as http:
        yield http


async def test_at_risk_and_sort_by_on_time_probability(
    client: httpx.AsyncClient, strict_client: httpx.AsyncClient, engine: AsyncEngine,
    db: AsyncSession,
) -> None:
    """NARROW: a lane of 30 h (max 31 h), 34 h left to its deadline: margin 4 h, near-certain.
    WIDE: a lane of 20 h (max 60 h), 30 h left: margin 10 h, P ≈ 0.73. The margin would put
    NARROW first; the probability puts WIDE first and flags it (below 0.9, not below 0.5)."""
    origin = await f.site(client, "Leiden CTU", "NL")
    destination = await f.site(client, "Boston infusion centre", "US")
    product = await f.refrigerated_product(client)
    packaging = await f.packaging(client, 96.0)
    departed = T0 + timedelta(hours=62)
    now = departed + timedelta(minutes=10)  # both just gone (no silent logger to alert on)
    ids = {}
    for ref, expected_h, max_h, left_h in (("NARROW", 30, 31, 34), ("WIDE", 20, 60, 30)):
        lane = await f.lane(client, origin, destination, name=ref, expected_transit_h=expected_h,
                            max_transit_h=max_h)
        body = await post(client, "/shipments", {
            "reference": ref, "lane_id": lane, "product_id": product, "packaging_id": packaging,
            "logger_ids": [await f.logger(client, f"L-{ref}")],
            "packed_at": (departed + timedelta(hours=left_h - 96)).isoformat(),
            "safety_margin_h": 1})
        ids[ref] = body["id"]
        await _event(client, body["id"], "departed", departed)
    await round_(engine, Clock(now))
    rows = {str(r.shipment_id): r.on_time_probability
            for r in (await db.scalars(select(ShipmentForecast))).all()}
    assert rows[ids["NARROW"]] > 0.99 and 0.6 < rows[ids["WIDE"]] < 0.8
    items = (await client.get(f"{API}/shipments", params={"sort": "risk"})).json()["items"]
    assert [(i["reference"], i["margin_h"]) for i in items] == [("WIDE", 10.0), ("NARROW", 4.0)]
    assert [i["at_risk"] for i in items] == [True, False]
    flagged = (await client.get(f"{API}/shipments", params={"at_risk": "true"})).json()["items"]
    assert [i["reference"] for i in flagged] == ["WIDE"]
    calm = (await client.get(f"{API}/shipments", params={"at_risk": "false"})).json()["items"]
    assert [i["reference"] for i in calm] == ["NARROW"]
    strict = (await strict_client.get(f"{API}/shipments", params={"at_risk": "true"})).json()
    assert strict["items"] == []
    # Delivered late: the probability is 0, but a finished shipment is no longer "at risk".
    await _event(client, ids["WIDE"], "delivered", departed + timedelta(hours=31))
    await round_(engine, Clock(departed + timedelta(hours=32)))
    wide = (await client.get(f"{API}/shipments/{ids['WIDE']}")).json()
    assert (wide["on_time_probability"], wide["at_risk"]) == (0.0, False)


async def _key(client: httpx.AsyncClient, role: str, site_id: str | None = None) -> dict[str, str]:
    body = {"role": role, **({"site_id": site_id} if site_id else {})}
    return {"Authorization": f"Bearer {(await post(client, '/api-keys', body))['key']}"}


async def test_what_if_a_customs_hold(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession
) -> None:
    """Departed 5 h ago on the spec's lane (30 h expected, 48 h max, BOS customs 8 h), deadline
    40 h after departure: a 48 h customs hold pushes the median 40 h later (48 − 8 allowed)."""
    now = utcnow()
    departed = now - timedelta(hours=5)
    world = await fleet(client, ["SHP-1"], hold_h=40.0, packed_at=departed)
    sid = world["shipments"]["SHP-1"]["id"]
    url = f"{API}/shipments/{sid}/what-if"
    await _event(client, sid, "departed", departed)
    # Before the engine's first judgement: from the departure, the segment not yet known.
    early = (await client.post(url, json={"customs_hold_h": 48})).json()
    await round_(engine, Clock(now))
    stored = (await db.execute(select(ShipmentForecast.__table__))).one()
    base = (await client.post(url, json={"delay_h": 0})).json()
    held = (await client.post(url, json={"customs_hold_h": 48})).json()
    both = (await client.post(url, json={"customs_hold_h": 48, "delay_h": 10})).json()
    assert set(held) == {"shipment_id", "customs_hold_h", "delay_h", "hold_deadline",
                         "on_time_probability", "arrival_p50", "arrival_p90", "forecast_basis",
                         "margin_h"}
    assert (held["customs_hold_h"], held["delay_h"]) == (48.0, None)
    assert held["forecast_basis"] == {"method": "lane_spec", "delivered_n": 0}
    assert held["hold_deadline"] == _iso(departed + timedelta(hours=40))
    assert base["margin_h"] == pytest.approx(held["margin_h"] + 40.0, abs=0.01)
    assert early["margin_h"] == pytest.approx(held["margin_h"], abs=0.01)
    assert both["margin_h"] == pytest.approx(held["margin_h"] - 10.0, abs=0.01)
    assert base["on_time_probability"] > 0.5 and held["on_time_probability"] == 0.0
    # 25 h to go on a median of 30 h from departure: the base margin is about 10 h.
    assert 9.0 < base["margin_h"] < 11.0
    # Nothing stored: the shipment's forecast is as the engine left it, and a lane model found
    # missing (stale) is rebuilt in memory only.
    assert (await db.execute(select(ShipmentForecast.__table__))).one() == stored
    await db.execute(delete(LaneForecastModel))
    await db.commit()
    again = (await client.post(url, json={"customs_hold_h": 48})).json()
    assert again["margin_h"] == pytest.approx(held["margin_h"], abs=0.01)
    assert await db.scalar(select(func.count()).select_from(LaneForecastModel)) == 0


@pytest.mark.parametrize("body", [
    {}, {"customs_hold_h": -1}, {"delay_h": 721}, {"customs_hold_h": "long"},
    {"customs_hold_h": 1, "weather": "bad"},
])
async def test_what_if_refuses_bad_assumptions(
    client: httpx.AsyncClient, db: AsyncSession, body: dict[str, object]
) -> None:
    world = await fleet(client, ["SHP-1"])
    response = await client.post(
        f"{API}/shipments/{world['shipments']['SHP-1']['id']}/what-if", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_what_if_refuses_non_finite_hours(client: httpx.AsyncClient, db: AsyncSession) -> None:
    world = await fleet(client, ["SHP-1"])
    response = await client.post(
        f"{API}/shipments/{world['shipments']['SHP-1']['id']}/what-if",
        content=b'{"customs_hold_h": NaN}', headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text


async def test_what_if_is_seen_as_the_shipment_is(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession
) -> None:
    world = await fleet(client, ["SHP-1"], packed_at=utcnow() - timedelta(hours=2))
    sid = world["shipments"]["SHP-1"]["id"]
    await round_(engine, Clock(utcnow()))
    other = await f.site(client, "Elsewhere", "FR")
    url = f"{API}/shipments/{sid}/what-if"
    hostile = await client.post(url, json={"delay_h": 1}, headers=await _key(client, "site", other))
    assert hostile.status_code == 404
    own = await client.post(url, json={"delay_h": 1},
                            headers=await _key(client, "site", world["destination"]))
    assert own.status_code == 200, own.text
    missing = await client.post(f"{API}/shipments/{uuid.uuid4()}/what-if", json={"delay_h": 1})
    assert missing.status_code == 404


async def test_lane_performance_transit_percentiles_on_time_rate_and_dwell(
    client: httpx.AsyncClient, db: AsyncSession
) -> None:
    """Hold 40 h, packed at T0 (+ i min), departed T0 + 1 h: transits 28, 30, 34, 50 h — the
    last arrives after its deadline. H-1 waits 2 h at AMS; the others pass no waypoint."""
    world = await fleet(client, ["H-1", "H-2", "H-3", "H-4"], hold_h=40.0)
    ships = world["shipments"]
    for ref, transit in (("H-1", 28.0), ("H-2", 30.0), ("H-3", 34.0), ("H-4", 50.0)):
        await _event(client, ships[ref]["id"], "departed", T0 + timedelta(hours=1))
        await _event(client, ships[ref]["id"], "delivered", T0 + timedelta(hours=1 + transit))
    fixes = [(52.31, 4.76)] * 13 + [(50.0, -20.0)]
    await add_readings(db, ships["H-1"]["id"], ships["H-1"]["logger_ids"][0],
                       minutes(T0 + timedelta(hours=1), [5.0] * len(fixes), 600), positions=fixes)
    perf = (await client.get(f"{API}/lanes/{world['lane_id']}/performance")).json()
    transit = perf["transit_h"]
    assert (transit["count"], transit["p50"], transit["on_time"], transit["on_time_rate"]) == (
        4, 32.0, 3, 0.75)
    assert transit["p10"] == pytest.approx(28.6) and transit["p90"] == pytest.approx(45.2)
    ams, bos = perf["dwell_h"]
    assert (ams["p10"], ams["p50"], ams["max"]) == (0.0, 0.0, 2.0)
    assert ams["p90"] == pytest.approx(1.4)
    assert (bos["count"], bos["p90"]) == (4, 0.0)
    empty = await f.lane(client, world["origin"], world["destination"], name="EMPTY")
    none = (await client.get(f"{API}/lanes/{empty}/performance")).json()["transit_h"]
    assert (none["count"], none["p10"], none["p90"], none["on_time"], none["on_time_rate"]) == (
        0, None, None, 0, None)


async def test_the_forecast_follows_the_stops_the_engine_finds(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession
) -> None:
    """Departed at T0: positions inside AMS from +60 min put it at waypoint 0 (segment 1) since
    then; the first fix outside at +540 min puts it on the leg to BOS customs (segment 2) from
    then (the engine ends a stay at the first reading out). The 8 h at AMS (allowance 6 h) count
    as 2 h of overrun."""
    world = await fleet(client, ["SHP-1"])
    sid = world["shipments"]["SHP-1"]["id"]
    logger_id = world["shipments"]["SHP-1"]["logger_ids"][0]
    await _event(client, sid, "departed", T0)
    ams, away = {"lat": 52.31, "lon": 4.76}, {"lat": 50.0, "lon": -20.0}

    async def seen(minutes: list[int], where: dict[str, float]) -> None:
        rows = [{"logger_id": logger_id, "ts": T0 + timedelta(minutes=m),
                 "shipment_id": uuid.UUID(sid), "temp_c": 5.0, "received_at": T0, **where}
                for m in minutes]
        async with make_sessionmaker(engine)() as session, session.begin():
            await session.execute(insert(Reading), rows)
            await enqueue_evaluation(session, uuid.UUID(sid), rows[0]["ts"])

    async def forecast_row() -> ShipmentForecast:
        db.expire_all()
        row = await db.get(ShipmentForecast, uuid.UUID(sid))
        assert row is not None
        return row

    await seen(list(range(0, 60, 1)), {"lat": 52.0, "lon": 4.0})
    await seen(list(range(60, 200, 1)), ams)
    await round_(engine, Clock(T0 + timedelta(minutes=200)))
    at_ams = await forecast_row()
    assert (at_ams.segment, at_ams.segment_since, at_ams.overrun_h) == (
        1, T0 + timedelta(minutes=60), 0.0)
    # More of the same place a minute later: the forecast stays (younger than FRESH).
    await seen([200], ams)
    await round_(engine, Clock(T0 + timedelta(minutes=201)))
    assert (await forecast_row()).computed_at == T0 + timedelta(minutes=200)
    await seen(list(range(201, 540, 1)), ams)
    await seen(list(range(540, 560, 1)), away)
    await round_(engine, Clock(T0 + timedelta(minutes=560)))
    gone = await forecast_row()
    assert (gone.segment, gone.leg_started_at) == (2, T0)
    assert (gone.segment_since, gone.overrun_h) == (T0 + timedelta(minutes=540), 2.0)
