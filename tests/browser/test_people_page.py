"""People on the page in a real headless Chromium: sign in with email and password, see the fleet,
sign a release as a QP (password re-entered in a dialog), sign out; a session ended on the server
signs the page out."""

from __future__ import annotations

from datetime import timedelta

import httpx
from playwright.async_api import async_playwright, expect
from sqlalchemy.ext.asyncio import AsyncSession

from tests import factories as f
from tests.api.keys import bearer, make_key
from tests.api.people import PASSWORD, make_user
from tests.browser.pages import ARGS, ARTIFACTS, CHROMIUM


async def _delivered(client: httpx.AsyncClient) -> dict[str, str]:
    shipment = await f.shipment_setup(client, reference="SHP-SIGN",
                                      departed_at=(f.T0 + timedelta(hours=1)).isoformat())
    coordinator = bearer(await make_key(client, "coordinator"))
    delivered = await client.post(f"/api/v1/shipments/{shipment['id']}/events", headers=coordinator,
                                  json={"type": "delivered", "at": (f.T0 + timedelta(hours=20)).isoformat()})
    assert delivered.status_code == 201, delivered.text
    return shipment


async def test_a_qp_signs_in_sees_the_fleet_and_signs_a_release(
    client: httpx.AsyncClient, db: AsyncSession, live: str,
) -> None:
    shipment = await _delivered(client)
    qp = await make_user(client, "qp", email="quinn@example.org", name="Quinn Parker")
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await (await browser.new_context(viewport={"width": 1400, "height": 1000})
                          ).new_page()
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            await page.goto(f"{live}/")
            await expect(page.locator("#person-form")).to_be_visible()
            await page.fill("#email", "quinn@example.org")
            await page.fill("#password", "not-my-password-1")
            await page.click("#person-form button[type=submit]")
            await expect(page.locator("#login-error")).to_have_text(
                "the email or password is wrong, or the account is disabled")
            await page.fill("#password", PASSWORD)
            await page.click("#person-form button[type=submit]")
            rows = page.locator("#fleet-table tbody tr")
            await expect(rows).to_have_count(1)
            await expect(rows.first).to_have_attribute("data-reference", "SHP-SIGN")
            await expect(page.locator("#who")).to_have_text("Quinn Parker (qp)")
            # The session cookie is HttpOnly: the page's scripts never see it.
            assert "coldchain_session" not in await page.evaluate("document.cookie")
            assert await page.evaluate("sessionStorage.length") == 0
            await page.reload()  # the session survives a reload
            await expect(page.locator("#who")).to_have_text("Quinn Parker (qp)")

            await rows.first.click()
            box = page.locator("#s-release")
            await box.locator("button[data-decision=released]").click()
            dialog = page.locator("#sign-dialog")
            await expect(dialog).to_be_visible()
            await dialog.locator("textarea[name=reason]").fill("record complete, within limits")
            await dialog.locator("input[name=email]").fill("quinn@example.org")
            await dialog.locator("input[name=password]").fill("not-my-password-1")
            await dialog.locator("button.sign").click()
            await expect(dialog.locator(".error")).to_have_text(
                "the signature is not valid: wrong email or password")
            await page.screenshot(path=str(ARTIFACTS / "people-sign-dialog.png"))
            await dialog.locator("input[name=password]").fill(PASSWORD)
            await dialog.locator("button.sign").click()
            await expect(dialog).to_have_count(0)
            await expect(box).to_have_attribute("data-signed", "true")
            await expect(box).to_contain_text(
                "Released for clinical use — signed by Quinn Parker (quinn@example.org)")
            await page.screenshot(path=str(ARTIFACTS / "people-signed.png"), full_page=True)

            await page.click("#signout")
            await expect(page.locator("#person-form")).to_be_visible()
            await expect(page.locator("#who")).to_be_hidden()
        finally:
            await browser.close()
    detail = (await client.get(f"/api/v1/shipments/{shipment['id']}")).json()
    assert detail["signature"]["signer_email"] == "quinn@example.org"
    assert detail["released_by"] == "user:quinn@example.org"
    actions = [r["action"] for r in (await client.get("/api/v1/audit", params={
        "entity_type": "user", "entity_id": qp["id"]})).json()["items"]]
    assert actions == ["create", "login", "logout"]  # a wrong password is counted, not audited
    assert problems == []


async def test_a_session_ended_on_the_server_signs_the_page_out(
    client: httpx.AsyncClient, db: AsyncSession, live: str,
) -> None:
    await f.shipment_setup(client, reference="SHP-SEEN")
    user = await make_user(client, "coordinator")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await (await browser.new_context()).new_page()
            await page.goto(f"{live}/")
            await page.fill("#email", user["email"])
            await page.fill("#password", PASSWORD)
            await page.click("#person-form button[type=submit]")
            await expect(page.locator("#fleet-table tbody tr")).to_have_count(1)
            await expect(page.locator("body")).to_have_attribute("data-live", "on")
            disabled = await client.patch(f"/api/v1/users/{user['id']}", json={"disabled": True})
            assert disabled.status_code == 200
            await page.select_option("#f-status", "all")  # the next request answers 401
            await expect(page.locator("#person-form")).to_be_visible()
            await expect(page.locator("#login-error")).to_have_text(
                "the account is disabled: sign in again")
        finally:
            await browser.close()
