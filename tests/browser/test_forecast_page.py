"""The arrival forecast on the page: the fleet row's on-time probability and p50/p90, the shipment's
forecast card and its what-if form (POST /shipments/{id}/what-if), figures judged by the real
engine round and compared with what the API answers."""

from __future__ import annotations

from datetime import timedelta

import httpx
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.models import utcnow
from tests import factories as f
from tests.api import dashboard_world as w
from tests.api.keys import make_key
from tests.browser.pages import ARTIFACTS, signed_in
from tests.db.engine_support import Clock, round_

VIEWER_ZONE = "Europe/Amsterdam"


def _pct(p: float) -> str:
    return f"{round(100 * p)} %"


async def test_forecast_in_the_fleet_row_the_shipment_and_a_what_if(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, live: str
) -> None:
    now = utcnow().replace(second=0, microsecond=0)
    packed = now - timedelta(hours=20)
    world = await w.fleet(client, ["SHP-FC"], hold_h=60.0, packed_at=packed)
    sid = world["shipments"]["SHP-FC"]["id"]
    departed = packed + timedelta(hours=1)
    await f.post(client, f"/shipments/{sid}/events",
                 {"type": "departed", "at": departed.isoformat()})
    # Nineteen hours on the way, out of Amsterdam and over the Atlantic.
    points = w.minutes(departed, [5.0] * 19, step_s=3600)
    positions = [(52.31 - i * 0.4, 4.76 - i * 3.0) for i in range(len(points))]
    await w.add_readings(db, sid, world["shipments"]["SHP-FC"]["logger_ids"][0], points,
                         positions=positions)
    await round_(engine, Clock(now))
    shipment = (await client.get(f"/api/v1/shipments/{sid}")).json()
    p = shipment["on_time_probability"]
    assert p is not None and shipment["forecast_basis"]["method"] == "lane_spec"
    asked = {"customs_hold_h": 48}
    what_if = (await client.post(f"/api/v1/shipments/{sid}/what-if", json=asked)).json()
    assert what_if["on_time_probability"] < p  # two days in customs against a 60 h hold

    key = await make_key(client, "coordinator")
    async with signed_in(live, key, timezone_id=VIEWER_ZONE, locale="en-GB") as browser:
        page = browser.page
        row = page.locator("#fleet-table tbody tr[data-reference='SHP-FC']")
        await expect(row.locator("td.on-time")).to_have_text(_pct(p))
        await expect(row.locator(f"td.arrival time[datetime='{shipment['arrival_p50']}']")
                     ).to_have_count(1)
        await expect(row.locator(f"td.arrival time[datetime='{shipment['arrival_p90']}']")
                     ).to_have_count(1)
        await row.click()
        card = page.locator("#s-forecast")
        await expect(card.locator(".on-time-big")).to_have_text(_pct(p))
        await expect(card.locator(f"td.p50 time[datetime='{shipment['arrival_p50']}']")
                     ).to_have_count(1)
        await expect(card.locator(".basis")).to_contain_text("validated transit times")
        await card.locator("input[name=customs_hold_h]").fill("48")
        await card.locator("#what-if button[type=submit]").click()
        result = card.locator(".what-if-table")
        await expect(result).to_have_count(1)
        shown = float(await result.get_attribute("data-on-time") or "nan")
        assert shown == what_if["on_time_probability"]
        await expect(result.locator("tbody tr").first).to_have_text(
            f"On time{_pct(p)}{_pct(what_if['on_time_probability'])}")
        await expect(result.locator("thead")).to_contain_text("a 48 h customs hold")
        # An empty form asks for a figure instead of sending nothing.
        await card.locator("input[name=customs_hold_h]").fill("")
        await card.locator("#what-if button[type=submit]").click()
        await expect(card.locator("#what-if .error")).to_have_text(
            "Give a customs hold or a delay in hours.")
        await page.screenshot(path=str(ARTIFACTS / "shipment-forecast.png"), full_page=True)
    assert browser.only_from(live)
    assert browser.problems == []
