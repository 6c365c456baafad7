"""The track map over its offline basemap, readable fleet rows and the lane's plots, in a real
headless Chromium (viewer in Amsterdam) against a live server and the real database."""

from __future__ import annotations

from datetime import timedelta
from itertools import combinations
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import utcnow
from tests import factories as f
from tests.api import dashboard_world as w
from tests.api.keys import make_key
from tests.browser.pages import ARTIFACTS, signed_in

VIEWER_ZONE = "Europe/Amsterdam"
# Leiden → Amsterdam airport → Frankfurt hub → Milan customs → the hospital: two pairs of stops
# 25 and 40 km apart, whose labels collide at the scale of the whole lane.
WAYPOINTS = [
    {"name": "Leiden CTU", "lat": 52.166, "lon": 4.490, "radius_km": 5, "dwell_allowance_h": 2},
    {"name": "AMS", "lat": 52.310, "lon": 4.768, "radius_km": 8, "dwell_allowance_h": 4},
    {"name": "FRA hub", "lat": 50.033, "lon": 8.570, "radius_km": 10, "dwell_allowance_h": 6},
    {"name": "MXP customs", "lat": 45.630, "lon": 8.723, "radius_km": 10, "dwell_allowance_h": 12},
    {"name": "Ospedale Milano", "lat": 45.464, "lon": 9.190, "radius_km": 5,
     "dwell_allowance_h": 1},
]
T0 = (utcnow() - timedelta(hours=10)).replace(second=0, microsecond=0)


def _route(n: int) -> list[tuple[float, float]]:
    """n positions along Leiden → AMS → FRA, then on towards Basel (the last one near Basel)."""
    legs = [(52.166, 4.490), (52.310, 4.768), (50.033, 8.570), (47.56, 7.59)]
    out = []
    for i in range(n):
        t = i / (n - 1) * (len(legs) - 1)
        k = min(int(t), len(legs) - 2)
        u = t - k
        (a_lat, a_lon), (b_lat, b_lon) = legs[k], legs[k + 1]
        out.append((a_lat + (b_lat - a_lat) * u, a_lon + (b_lon - a_lon) * u))
    return out


async def _world(client: httpx.AsyncClient, db: AsyncSession) -> dict[str, Any]:
    origin = await f.site(client, "Leiden CTU", "NL")
    destination = await f.site(client, "Ospedale Milano", "IT")
    lane = await f.lane(client, origin, destination, name="LEI-MIL road", waypoints=WAYPOINTS,
                        corridor_km=40, expected_transit_h=20, max_transit_h=30)
    product = await f.refrigerated_product(client)
    packaging = await f.packaging(client, 96)
    ids = {}
    for ref, packed in (("SHP-MAP", T0), ("SHP-DONE", T0 - timedelta(days=3))):
        logger = await f.logger(client, f"L-{ref}", 600)
        ids[ref] = (await f.post(client, "/shipments", {
            "reference": ref, "lane_id": lane, "product_id": product, "packaging_id": packaging,
            "logger_ids": [logger], "packed_at": packed.isoformat(),
            "departed_at": (packed + timedelta(hours=1)).isoformat()}))["id"]
    done = await client.post(f"/api/v1/shipments/{ids['SHP-DONE']}/events", json={
        "type": "delivered", "at": (T0 - timedelta(days=3) + timedelta(hours=23)).isoformat()})
    assert done.status_code == 201, done.text
    points = w.minutes(T0 + timedelta(hours=1), [5.0] * 60, step_s=600)
    positions = _route(len(points))
    await w.add_readings(db, ids["SHP-MAP"], "L-SHP-MAP", points, positions=positions)
    await w.set_state(db, ids["SHP-MAP"], margin_h=60.0, at_risk=False, open_alerts=0,
                      open_critical_alerts=0, last_reading_ts=points[-1][0], last_temp_c=5.0,
                      last_lat=positions[-1][0], last_lon=positions[-1][1],
                      stability_budget_used_s=900.0)
    return {"ids": ids, "positions": positions}


def _local(iso_utc: str) -> str:
    """What the page shows for a UTC time to a viewer in Amsterdam (en-GB: zone `CET`)."""
    from datetime import datetime

    t = datetime.fromisoformat(iso_utc.replace("Z", "+00:00")).astimezone(ZoneInfo(VIEWER_ZONE))
    return t.strftime("%m-%d %H:%M ") + t.tzname()


async def _boxes(page: Page, selector: str) -> list[dict[str, float]]:
    return await page.eval_on_selector_all(selector, """els => els.map(e => {
        const r = e.getBoundingClientRect();
        return {x0: r.left, y0: r.top, x1: r.right, y1: r.bottom, text: e.textContent};
    })""")


def _overlap(a: dict[str, float], b: dict[str, float]) -> float:
    return max(0.0, min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])) * max(
        0.0, min(a["y1"], b["y1"]) - max(a["y0"], b["y0"]))


async def test_map_over_the_basemap_fleet_rows_and_lane_plots(
    client: httpx.AsyncClient, db: AsyncSession, live: str
) -> None:
    world = await _world(client, db)
    key = await make_key(client, "coordinator")
    async with signed_in(live, key, timezone_id=VIEWER_ZONE, locale="en-GB") as browser:
        page = browser.page

        # Fleet row: site names, the current leg, budget used / total, local times.
        row = page.locator("#fleet-table tbody tr[data-reference='SHP-MAP']")
        await expect(row).to_have_count(1)
        await expect(row.locator(".route")).to_have_text("Leiden CTU → Ospedale Milano")
        await expect(row.locator(".where")).to_have_text("FRA hub → MXP customs")
        await expect(row.locator("td.budget")).to_have_text("15 / 60 min")
        shipment = (await client.get(f"/api/v1/shipments/{world['ids']['SHP-MAP']}")).json()
        deadline = row.locator(f"time[datetime='{shipment['hold_deadline']}']")
        assert shipment["hold_deadline"].endswith("Z")
        await expect(deadline).to_have_text(_local(shipment["hold_deadline"]))
        await expect(deadline).to_have_attribute(
            "title", shipment["hold_deadline"][:16].replace("T", " ") + " UTC")
        assert _local(shipment["hold_deadline"]).endswith("CET")  # not the UTC text
        done = page.locator("#fleet-table tbody tr[data-reference='SHP-DONE'] .where")
        await expect(page.locator("#f-status")).to_be_visible()
        await page.select_option("#f-status", "all")
        await expect(done).to_have_text("delivered to Ospedale Milano")
        await page.screenshot(path=str(ARTIFACTS / "fleet-rows.png"), full_page=True)

        await row.click()
        svg = page.locator("#track-map")
        await expect(svg.locator("circle.position")).to_have_count(1)
        # The basemap: Natural Earth's countries, every one a path.
        assert await svg.locator("#basemap-world path.country").count() >= 240
        assert f"{live}/static/basemap.json" in browser.requests
        # Zoomed to the shipment: the extent is the lane and the track, all of it in view.
        west, south, east, north = map(float, (await svg.get_attribute("data-extent")).split(","))
        assert (west, south, east, north) == pytest.approx((4.49, 45.464, 9.19, 52.31), abs=1e-3)
        view = (await _boxes(page, "#track-map"))[0]
        marks = await _boxes(page, "#track-map circle.waypoint, #track-map circle.position")
        assert len(marks) == len(WAYPOINTS) + 1
        for m in marks:
            assert view["x0"] < m["x0"] and m["x1"] < view["x1"], m
            assert view["y0"] < m["y0"] and m["y1"] < view["y1"], m
        # The lane fills the view: its extent spans more than half of it one way or the other.
        spread_x = max(m["x1"] for m in marks) - min(m["x0"] for m in marks)
        spread_y = max(m["y1"] for m in marks) - min(m["y0"] for m in marks)
        assert max(spread_x / (view["x1"] - view["x0"]), spread_y / (view["y1"] - view["y0"])) > 0.5
        # The origin's and the destination's countries are drawn, marked, with area in view.
        for a2, cls in (("NL", "origin"), ("IT", "destination"), ("DE", None)):
            country = svg.locator(f"#basemap-world path.country[data-a2='{a2}']")
            await expect(country).to_have_count(1)
            if cls:
                await expect(country).to_have_class(f"country {cls}")
            box = (await _boxes(page, f"#basemap-world path.country[data-a2='{a2}']"))[0]
            assert _overlap(box, view) > 400, (a2, box, view)
        # Labels: none overlaps another, all inside the map; the position's is always there.
        labels = await _boxes(page, "#track-map text.label")
        assert {"now 5.0 °C", "FRA hub", "MXP customs"} <= {b["text"] for b in labels}
        for a, b in combinations(labels, 2):
            assert _overlap(a, b) == 0, (a["text"], b["text"])
        for b in labels:
            assert view["x0"] <= b["x0"] and b["x1"] <= view["x1"], b
            assert view["y0"] <= b["y0"] and b["y1"] <= view["y1"], b
        assert "Germany" in {b["text"] for b in labels}
        # Zoom in and back to the shipment.
        fitted = float(await svg.get_attribute("data-zoom"))
        await page.click("#map-box button.map-in")
        await expect(svg).not_to_have_attribute("data-zoom", f"{fitted:.3f}")
        assert float(await svg.get_attribute("data-zoom")) == pytest.approx(fitted * 1.6, rel=1e-3)
        await page.click("#map-box button.map-fit")
        await expect(svg).to_have_attribute("data-zoom", f"{fitted:.3f}")
        # The wheel scrolls the page past the map; once the map is clicked it zooms there.
        async def centre() -> tuple[float, float]:
            box = (await _boxes(page, "#track-map"))[0]
            return (box["x0"] + box["x1"]) / 2, (box["y0"] + box["y1"]) / 2

        await svg.scroll_into_view_if_needed()
        await page.mouse.move(*await centre())
        await page.evaluate("""document.querySelector('#track-map').addEventListener('wheel',
            () => { document.body.dataset.wheels = 1 + Number(document.body.dataset.wheels || 0); })""")
        await page.mouse.wheel(0, 120)
        await expect(page.locator("body")).to_have_attribute("data-wheels", "1")
        assert await svg.get_attribute("data-zoom") == f"{fitted:.3f}"  # set as a zoom happens
        hub = svg.locator("circle.waypoint[data-name='FRA hub']")
        before = await hub.get_attribute("cx") or ""
        x, y = await centre()
        await page.mouse.move(x, y)
        await page.mouse.down()
        await page.mouse.move(x + 60, y, steps=4)
        await page.mouse.up()
        await expect(hub).not_to_have_attribute("cx", before)
        assert float(await hub.get_attribute("cx") or "nan") > float(before)  # dragged east
        await page.mouse.wheel(0, -200)
        await expect(svg).not_to_have_attribute("data-zoom", f"{fitted:.3f}")
        assert float(await svg.get_attribute("data-zoom") or 0) > fitted
        await page.click("#map-box button.map-fit")
        await expect(svg).to_have_attribute("data-zoom", f"{fitted:.3f}")
        await page.locator("#map-box").screenshot(path=str(ARTIFACTS / "track-map.png"))

        # The lane's plots: one delivered shipment, 22 h in transit; dwell per waypoint.
        transit = page.locator("#transit-plot .dist-row")
        await expect(transit).to_have_attribute("data-count", "1")
        await expect(page.locator("#dwell-plot .dist-row")).to_have_count(len(WAYPOINTS))
        await expect(page.locator("#s-cards")).to_contain_text("15 / 60 min")
        await page.screenshot(path=str(ARTIFACTS / "shipment-outlook.png"), full_page=True)
    assert browser.only_from(live)
    assert browser.problems == []


async def test_a_lane_across_the_antimeridian_stays_one_piece(
    client: httpx.AsyncClient, db: AsyncSession, live: str
) -> None:
    """Tokyo → Anchorage → Los Angeles: the map unwraps the longitudes around the lane, so the
    shipment is one piece in the middle of the view with Japan and the USA on either side."""
    pacific = [
        {"name": "NRT", "lat": 35.77, "lon": 140.39, "radius_km": 10, "dwell_allowance_h": 4},
        {"name": "ANC", "lat": 61.17, "lon": -149.99, "radius_km": 10, "dwell_allowance_h": 4},
        {"name": "LAX customs", "lat": 33.94, "lon": -118.41, "radius_km": 10,
         "dwell_allowance_h": 8},
    ]
    world = await w.fleet(client, ["SHP-PAC"], waypoints=pacific, name="NRT-LAX",
                          packed_at=T0, corridor_km=200)
    sid = world["shipments"]["SHP-PAC"]["id"]
    points = w.minutes(T0 + timedelta(hours=1), [5.0] * 12, step_s=1800)
    # Over the North Pacific from Tokyo, across 180° to about 170° W.
    positions = [(36.0 + i * 2.0, 141.0 + i * 4.0) for i in range(11)] + [(58.0, -170.0)]
    await w.add_readings(db, sid, world["shipments"]["SHP-PAC"]["logger_ids"][0], points,
                         positions=positions)
    await w.set_state(db, sid, last_reading_ts=points[-1][0], last_temp_c=5.0,
                      last_lat=58.0, last_lon=-170.0)
    key = await make_key(client, "coordinator")
    async with signed_in(live, key) as browser:
        page = browser.page
        await page.goto(f"{live}/#/shipments/{sid}")
        svg = page.locator("#track-map")
        await expect(svg.locator("circle.position")).to_have_count(1)
        west, _, east, _ = map(float, (await svg.get_attribute("data-extent")).split(","))
        assert (west, east) == pytest.approx((140.39, 360 - 118.41), abs=1e-3)
        view = (await _boxes(page, "#track-map"))[0]
        marks = await _boxes(page, "#track-map circle.waypoint, #track-map circle.position")
        for m in marks:
            assert view["x0"] < m["x0"] and m["x1"] < view["x1"], m
        # Japan is drawn where it is; Alaska and California come from the copy 360° east.
        japan = (await _boxes(page, "#basemap-world path.country[data-a2='JP']"))[0]
        assert _overlap(japan, view) > 400
        nrt, lax = marks[0], marks[2]
        assert nrt["x0"] < lax["x0"]  # Tokyo on the left, Los Angeles on the right
        labels = await _boxes(page, "#track-map text.label")
        assert {"NRT", "ANC", "LAX customs"} <= {b["text"] for b in labels}
        await page.locator("#map-box").screenshot(path=str(ARTIFACTS / "track-map-pacific.png"))
    assert browser.problems == []
