"""The dashboard page in headless Chromium, signed in, with every request and page error noted."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Page, async_playwright, expect

CHROMIUM = os.environ.get("COLDCHAIN_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
# Server, database and browser share a loaded machine: what a page must show may take longer than
# Playwright's 5 s default. A generous bound costs nothing when it comes early.
expect.set_options(timeout=30_000)


@dataclass
class Session:
    page: Page
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def only_from(self, live: str) -> bool:
        """Everything the page loaded came from this server: no CDN, tile server or fonts."""
        return bool(self.requests) and all(
            u.startswith(live) or u.startswith(("data:", "blob:")) for u in self.requests)


@asynccontextmanager
async def signed_in(live: str, key: str, **context: Any) -> AsyncIterator[Session]:
    """A 1400×1100 page (unless `context` says otherwise) signed in with `key`."""
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = await browser.new_context(
                **{"viewport": {"width": 1400, "height": 1100}, **context})
            session = Session(await ctx.new_page())
            page = session.page
            page.on("request", lambda r: session.requests.append(r.url))
            page.on("pageerror", lambda e: session.problems.append(f"page error: {e}"))
            page.on("console", lambda m: session.problems.append(m.text)
                    if m.type == "error" else None)
            await page.goto(f"{live}/")
            await expect(page.locator("#login")).to_be_visible()
            await page.click("#use-key")  # people sign in with a password; keys are a link away
            await page.fill("#api-key", key)
            await page.click("#login-form button[type=submit]")
            yield session
        finally:
            await browser.close()
