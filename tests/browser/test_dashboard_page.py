"""The dashboard page in a real headless Chromium against a live server and the real database."""

from __future__ import annotations

from datetime import timedelta

import httpx
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import utcnow
from tests.api import dashboard_world as w
from tests.api.keys import make_key
from tests.browser.pages import ARTIFACTS, signed_in

# A shipment on its way now: packed six hours ago (the chart runs from packing to now).
T0 = (utcnow() - timedelta(hours=6)).replace(second=0, microsecond=0)


async def _world(client: httpx.AsyncClient, db: AsyncSession) -> dict[str, str]:
    world = await w.fleet(client, ["SHP-WEB", "SHP-CALM"], packed_at=T0)
    hot, calm = world["shipments"]["SHP-WEB"], world["shipments"]["SHP-CALM"]
    logger_id = hot["logger_ids"][0]
    # Five hours at 1 min: an excursion to 12.5 °C at 60–75 min, a silence from 150 to 200 min.
    temps = [12.5 if 60 <= i <= 75 else 5.0 + (i % 7) * 0.2 for i in range(300)]
    points = [p for i, p in enumerate(w.minutes(T0, temps)) if not 150 < i < 200]
    positions = [(52.31 - i * 0.03, 4.76 - i * 0.25) for i in range(len(points))]
    await w.add_readings(db, hot["id"], logger_id, points, positions=positions)
    alert_id = await w.add_excursion_and_alert(
        db, hot["id"], logger_id, T0 + timedelta(minutes=60), T0 + timedelta(minutes=76), 12.5,
        severity="critical")
    # A route deviation in the same hours: not a temperature excursion, so not shaded as one.
    await w.add_excursion_and_alert(
        db, hot["id"], logger_id, T0 + timedelta(minutes=100), T0 + timedelta(minutes=290), 12.5,
        kind="route_deviation")
    last = points[-1]
    await w.set_state(db, hot["id"], margin_h=14.0, at_risk=True, open_alerts=1,
                      open_critical_alerts=1, last_reading_ts=last[0], last_temp_c=last[1],
                      last_lat=positions[-1][0], last_lon=positions[-1][1])
    await w.set_state(db, calm["id"], margin_h=50.0, at_risk=False, open_alerts=0,
                      open_critical_alerts=0)
    return {"hot": hot["id"], "calm": calm["id"], "alert": alert_id, "logger": logger_id}


async def test_fleet_chart_track_and_acknowledging_an_alert(
    client: httpx.AsyncClient, db: AsyncSession, live: str
) -> None:
    ids = await _world(client, db)
    # A coordinator logs in: acknowledging is a person's decision, never the admin key's.
    key = await make_key(client, "coordinator")
    async with signed_in(live, key) as browser:
        page = browser.page
        rows = page.locator("#fleet-table tbody tr")
        await expect(rows).to_have_count(2)
        # Risk order and colouring: the critical shipment first, in red.
        await expect(rows.first).to_have_attribute("data-reference", "SHP-WEB")
        await expect(rows.first).to_have_class("risk-critical")
        await expect(rows.nth(1)).to_have_class("risk-ok")
        assert await page.evaluate("sessionStorage.getItem('coldchain.apiKey')") == key
        await expect(page.locator("body")).to_have_attribute("data-live", "on")
        await page.screenshot(path=str(ARTIFACTS / "dashboard-fleet.png"), full_page=True)

        await rows.first.click()
        chart = page.locator("#temp-chart")
        excursion = chart.locator("rect.excursion")
        await expect(excursion).to_have_count(1)
        await expect(excursion).to_have_attribute("data-kind", "temperature_high")
        assert float(await excursion.get_attribute("width") or 0) > 5
        other = chart.locator("rect.excursion-other")
        await expect(other).to_have_count(1)
        await expect(other).to_have_attribute("data-kind", "route_deviation")
        assert float(await other.get_attribute("height") or 0) == 6
        # The silence (150–200 min, unknown from 153) and the hour since the last reading.
        gaps = chart.locator("rect.gap")
        await expect(gaps).to_have_count(2)
        middle = (T0 + timedelta(minutes=153)).isoformat().replace("+00:00", "Z")
        await expect(gaps.first).to_have_attribute("data-start", middle)
        await expect(chart.locator("line.limit")).to_have_count(2)
        assert await chart.locator("circle.oor").count() == 16  # the 16 minutes above 8 °C
        assert await chart.locator("path.mean").count() == 2  # broken at the gap
        track = page.locator("#track-map")
        await expect(track.locator("polyline.track")).to_have_count(1)
        await expect(track.locator("circle.waypoint")).to_have_count(2)
        await expect(track.locator("path.corridor")).to_have_count(1)

        alert_row = page.locator(f"tr[data-alert-id='{ids['alert']}']")
        await expect(alert_row.locator("td.state")).to_have_text("open")
        await alert_row.locator("button.ack").click()
        await alert_row.locator("input[name=comment]").fill("courier re-iced the box")
        await alert_row.locator("button.confirm").click()
        await expect(alert_row.locator("td.state")).to_have_text("acknowledged")
        await expect(alert_row.locator("button.ack")).to_have_count(0)
        await page.screenshot(path=str(ARTIFACTS / "dashboard-shipment.png"), full_page=True)

        # Live: an alert raised now appears without a reload (SSE → refetch).
        await w.add_excursion_and_alert(
            db, ids["hot"], ids["logger"], T0 + timedelta(minutes=280),
            T0 + timedelta(minutes=285), 3.0, kind="light_exposure")
        await expect(page.locator("#alerts-table td", has_text="light_exposure")).to_be_visible()

    stored = (await client.get(f"/api/v1/alerts/{ids['alert']}")).json()
    assert stored["state"] == "acknowledged"
    assert stored["ack_comment"] == "courier re-iced the box"
    assert stored["acknowledged_by"] == "key:" + key.split("_")[1]
    # Everything the page needed came from this server: no CDN, no tile server, no fonts.
    assert browser.only_from(live)
    assert browser.problems == []
    assert (ARTIFACTS / "dashboard-shipment.png").stat().st_size > 10_000
