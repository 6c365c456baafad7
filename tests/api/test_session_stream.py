"""The live stream by a person's session: scoped like a key of the role, and closed once the
session ends (signed out, account disabled), as the re-check does for keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.settings import Settings
from tests import factories as f
from tests.api import dashboard_world as w
from tests.api.people import PASSWORD, make_user
from tests.api.test_dashboard_stream import Listener
from tests.live_server import running


@pytest.fixture
async def live(settings: Settings, engine: AsyncEngine, db: AsyncSession) -> AsyncIterator[str]:
    """Streams re-check their session every 0.3 s (30 s in production)."""
    async with running(settings.model_copy(update={"stream_recheck_s": 0.3}), engine) as url:
        yield url


async def _signed_in(live: str, email: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=live, timeout=10, headers={"Origin": live})
    response = await http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return http


async def test_a_session_stream_is_scoped_and_ends_with_the_session(
    client: httpx.AsyncClient, db: AsyncSession, live: str,
) -> None:
    mine = await w.fleet(client, ["SHP-A"])
    theirs = await w.fleet(client, ["SHP-B"])
    a, b = mine["shipments"]["SHP-A"], theirs["shipments"]["SHP-B"]
    site_user = await make_user(client, "site", mine["origin"])
    coordinator = await make_user(client, "coordinator")
    site_http = await _signed_in(live, site_user["email"])
    staff_http = await _signed_in(live, coordinator["email"])
    site, staff = Listener(site_http, None), Listener(staff_http, None)
    try:
        for listener in (site, staff):
            assert (await listener.next("ready"))["listening"] is True
        await w.add_excursion_and_alert(db, b["id"], b["logger_ids"][0], f.T0,
                                        f.T0 + timedelta(minutes=5), 9.0)
        await w.add_excursion_and_alert(db, a["id"], a["logger_ids"][0], f.T0,
                                        f.T0 + timedelta(minutes=5), 11.0)
        assert [(await staff.next("alert"))["reference"] for _ in range(2)] == ["SHP-B", "SHP-A"]
        assert (await site.next("alert"))["reference"] == "SHP-A"  # SHP-B's was withheld

        assert (await site_http.post("/api/v1/auth/logout")).status_code == 204
        ended = await site.next("unauthorized")
        assert ended["reason"] == "the session was ended (signed out)"
        disabled = await client.patch(f"/api/v1/users/{coordinator['id']}", json={"disabled": True})
        assert disabled.status_code == 200
        assert (await staff.next("unauthorized"))["reason"] == "the account is disabled"
    finally:
        for listener in (site, staff):
            await listener.close()
        await site_http.aclose()
        await staff_http.aclose()
