"""Readiness on the shipment page in a real headless Chromium against a live server and the real
database: what a departure still needs, documents uploaded and downloaded, and a coordinator's
recharge and reroute on the custody chain."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import utcnow
from tests import factories as f
from tests.api.keys import bearer, make_key
from tests.browser.pages import ARTIFACTS, signed_in

T0 = (utcnow() - timedelta(hours=6)).replace(second=0, microsecond=0)
LICENCE = b"Import licence US-2026-0042: autologous CAR-T, valid for this shipment.\n"


async def _world(client: httpx.AsyncClient) -> dict[str, Any]:
    origin = await f.site(client, "Leiden CTU", "NL")
    destination = await f.site(client, "Boston infusion centre", "US")
    lane = await f.lane(client, origin, destination,
                        required_documents=["import_license", "qp_release_plan"])
    backup = await f.lane(client, origin, destination, name="AMS-FRA-BOS backup")
    shipment = await f.post(client, "/shipments", {
        "reference": "SHP-READY", "lane_id": lane,
        "product_id": await f.refrigerated_product(client),
        "packaging_id": (await f.post(client, "/packaging", {
            "name": "Passive 2-8 96h", "qualified_hold_h": 96,
            "requalified_until": (utcnow() + timedelta(days=10)).date().isoformat()}))["id"],
        "logger_ids": [await f.logger(client, "L-R")],
        "packed_at": T0.isoformat()})
    return {"shipment": shipment, "backup": backup}


async def test_readiness_documents_and_contingencies_on_the_shipment_page(
    client: httpx.AsyncClient, db: AsyncSession, live: str
) -> None:
    world = await _world(client)
    sid = world["shipment"]["id"]
    key = await make_key(client, "coordinator")
    async with signed_in(live, key, accept_downloads=True) as session:
        page = session.page
        await expect(page.locator("#fleet-table tbody tr")).to_have_count(1)
        # The fleet says which packaging needs requalifying within 30 days.
        await expect(page.locator("#requalification-due")).to_contain_text(
            "Passive 2-8 96h in 10 d")
        await page.goto(f"{live}/#/shipments/{sid}")

        verdict = page.locator("#readiness .ready")
        await expect(verdict).to_have_attribute("data-ready", "false")
        await expect(page.locator("#readiness li.missing")).to_have_count(2)
        await expect(page.locator("#documents-empty")).to_be_visible()

        form = page.locator("#document-form")
        await form.locator("input[name=kind]").fill("import_license")
        await form.locator("input[name=file]").set_input_files(
            files=[{"name": "licence.txt", "mimeType": "text/plain", "buffer": LICENCE}])
        await form.locator("button.upload").click()
        await expect(page.locator("#documents-table tbody tr")).to_have_count(1)
        await expect(page.locator("#readiness li.missing")).to_have_count(1)
        await expect(page.locator("#readiness li.missing")).to_have_attribute(
            "data-kind", "qp_release_plan")

        async with page.expect_download() as download_info:
            await page.locator("#documents-table a.download").click()
        download = await download_info.value
        assert download.suggested_filename == "licence.txt"
        path = await download.path()
        assert path is not None and path.read_bytes() == LICENCE

        # The QP release plan, valid for a year: ready.
        form = page.locator("#document-form")
        await form.locator("input[name=kind]").fill("qp_release_plan")
        await form.locator("input[name=file]").set_input_files(files=[{
            "name": "qp-plan.pdf", "mimeType": "application/pdf",
            "buffer": b"%PDF-1.7\n%%EOF\n"}])
        expires = (utcnow() + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M")
        await form.locator("input[name=expires]").fill(expires)
        await form.locator("button.upload").click()
        await expect(verdict).to_have_attribute("data-ready", "true")
        await expect(page.locator("#documents-table tbody tr")).to_have_count(2)

        # Departed (through the API, now that it is ready); the page shows the actions.
        departed = await client.post(
            f"/api/v1/shipments/{sid}/events", headers=bearer(key),
            json={"type": "departed", "at": (T0 + timedelta(hours=1)).isoformat()})
        assert departed.status_code == 201, departed.text
        await page.reload()
        await page.locator("#recharge-form input[name=note]").fill("re-iced at FRA depot")
        await page.locator("#recharge-form button.recharge").click()
        recharge = page.locator("#events li", has_text="recharged")
        await expect(recharge).to_contain_text("hold clock restarted")
        await expect(recharge).to_contain_text("re-iced at FRA depot")

        await page.locator("#reroute-form select[name=lane]").select_option(world["backup"])
        await page.locator("#reroute-form button.reroute").click()
        reroute = page.locator("#events li", has_text="rerouted")
        await expect(reroute).to_contain_text("onto lane AMS-FRA-BOS backup")
        await page.screenshot(path=str(ARTIFACTS / "dashboard-readiness.png"), full_page=True)
        problems = session.problems
        assert session.only_from(live)

    # A QP reads the readiness and the documents but is offered no upload and no contingency.
    async with signed_in(live, await make_key(client, "qp")) as session:
        page = session.page
        await page.goto(f"{live}/#/shipments/{sid}")
        await expect(page.locator("#documents-table tbody tr")).to_have_count(2)
        await expect(page.locator("#document-form")).to_have_count(0)
        await expect(page.locator("#recharge-form")).to_have_count(0)
        assert session.problems == []

    events = (await client.get(f"/api/v1/shipments/{sid}/events")).json()
    assert [e["type"] for e in events] == ["departed", "recharged", "rerouted"]
    assert events[1]["note"] == "re-iced at FRA depot"
    assert events[2]["lane_id"] == world["backup"]
    docs = (await client.get(f"/api/v1/shipments/{sid}/documents")).json()
    assert [(d["kind"], d["content_type"]) for d in docs] == [
        ("import_license", "text/plain; charset=utf-8"), ("qp_release_plan", "application/pdf")]
    assert problems == []
