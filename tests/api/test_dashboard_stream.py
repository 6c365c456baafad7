"""Server-Sent Events over a real server: alert transitions and shipment changes, scoped by site."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.models import ShipmentState
from app.core.security import Principal
from app.core.settings import Settings
from tests import factories as f
from tests.api import dashboard_world as w
from tests.api.keys import bearer, make_key
from tests.conftest import ADMIN_KEY
from tests.live_server import running
from tests.waits import until


class Listener:
    """Reads one SSE stream in the background into a queue of (event, data)."""

    def __init__(self, http: httpx.AsyncClient, key: str | None, **params: str) -> None:
        """`key` None: the client's own credentials (a person's session cookie)."""
        self.events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.task = asyncio.create_task(self._run(http, key, params))

    async def _run(self, http: httpx.AsyncClient, key: str | None, params: dict[str, str]) -> None:
        async with http.stream("GET", "/api/v1/stream", headers=bearer(key) if key else {},
                               params=params) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            event, data = "message", ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif line == "" and data:
                    await self.events.put((event, json.loads(data)))
                    event, data = "message", ""

    async def next(self, kind: str | None = None, wait_s: float = 10.0) -> dict[str, Any]:
        while True:
            event, data = await asyncio.wait_for(self.events.get(), wait_s)
            if kind is None or event == kind:
                return {"event": event, **data}

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture
async def live(settings: Settings, engine: AsyncEngine, db: AsyncSession) -> AsyncIterator[str]:
    async with running(settings, engine) as url:
        yield url


async def test_alerts_and_state_changes_arrive_live_and_scoped(
    client: httpx.AsyncClient, db: AsyncSession, live: str
) -> None:
    mine = await w.fleet(client, ["SHP-A"])
    theirs = await w.fleet(client, ["SHP-B"])
    a, b = mine["shipments"]["SHP-A"], theirs["shipments"]["SHP-B"]
    site_key = await make_key(client, "site", mine["origin"])
    async with httpx.AsyncClient(base_url=live, timeout=10) as http:
        admin = Listener(http, ADMIN_KEY)
        site = Listener(http, site_key)
        only_b = Listener(http, ADMIN_KEY, shipment_id=b["id"])
        try:
            for listener in (admin, site, only_b):
                assert (await listener.next("ready"))["listening"] is True
            await w.add_excursion_and_alert(db, b["id"], b["logger_ids"][0], f.T0,
                                            f.T0 + timedelta(minutes=5), 9.0)
            await w.add_excursion_and_alert(db, a["id"], a["logger_ids"][0], f.T0,
                                            f.T0 + timedelta(minutes=5), 11.0,
                                            severity="critical")
            first, second = await admin.next("alert"), await admin.next("alert")
            assert [first["reference"], second["reference"]] == ["SHP-B", "SHP-A"]
            assert second["event"] == "opened" and second["severity"] == "critical"
            assert second["kind"] == "temperature_high" and "sites" not in second
            seen_by_site = await site.next("alert")
            assert seen_by_site["reference"] == "SHP-A"  # SHP-B's came first and was withheld
            assert (await only_b.next("alert"))["reference"] == "SHP-B"

            await w.set_state(db, a["id"], margin_h=30.0, at_risk=False, open_alerts=1,
                              open_critical_alerts=1, last_temp_c=11.0,
                              last_reading_ts=f.T0 + timedelta(minutes=5))
            state = await site.next("shipment")
            assert state["change"] == "state" and state["margin_h"] == 30.0
            assert state["last_reading"]["temp_c"] == 11.0
            # Rewriting the engine's private state alone is no visible change: no event.
            await db.execute(update(ShipmentState).where(ShipmentState.shipment_id == a["id"])
                             .values(engine_state={"v": 2}))
            await db.commit()
            await db.execute(update(ShipmentState).where(ShipmentState.shipment_id == a["id"])
                             .values(margin_h=12.5, at_risk=True))
            await db.commit()
            changed = await site.next("shipment")
            assert (changed["margin_h"], changed["at_risk"]) == (12.5, True)

            departed = await client.post(f"/api/v1/shipments/{a['id']}/events", json={
                "type": "departed", "at": (f.T0 + timedelta(hours=1)).isoformat()})
            assert departed.status_code == 201
            status = await site.next("shipment")
            assert (status["change"], status["status"]) == ("status", "in_transit")
        finally:
            for listener in (admin, site, only_b):
                await listener.close()


async def test_a_listener_that_loses_its_connection_tells_clients_to_refetch(
    client: httpx.AsyncClient, db: AsyncSession, live: str
) -> None:
    async with httpx.AsyncClient(base_url=live, timeout=10) as http:
        admin = Listener(http, ADMIN_KEY)
        try:
            assert (await admin.next("ready"))["listening"] is True
            # Cut the hub's LISTEN connection from the server side, as a failover would.
            await db.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'coldchain listen coldchain_stream'"))
            await db.commit()
            reset = await admin.next("reset")
            assert "interrupted" in reset["reason"]
            world = await w.fleet(client, ["SHP-C"])  # after the reconnect, events flow again
            created = await admin.next("shipment", wait_s=15)
            assert created["reference"] == "SHP-C" and created["change"] == "created"
            assert world["shipments"]["SHP-C"]["id"] == created["shipment_id"]
        finally:
            await admin.close()


async def test_stream_requires_a_key(live: str) -> None:
    async with httpx.AsyncClient(base_url=live, timeout=10) as http:
        response = await http.get("/api/v1/stream")
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")


@pytest.fixture
async def live_recheck(settings: Settings, engine: AsyncEngine, db: AsyncSession
                       ) -> AsyncIterator[str]:
    """A live server whose streams re-check their key every 0.3 s (30 s in production)."""
    async with running(settings.model_copy(update={"stream_recheck_s": 0.3}), engine) as url:
        yield url


async def _key(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/api-keys", json={"name": "stream test", **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_revoked_or_expired_key_loses_the_stream(
    client: httpx.AsyncClient, db: AsyncSession, live_recheck: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.api.routes import stream as stream_route
    from app.core.models import utcnow

    checks: list[uuid.UUID | None] = []
    ask = stream_route.why_no_longer_valid

    async def counted(session: AsyncSession, principal: Principal, **kw: Any) -> str | None:
        checks.append(principal.key_id)
        return await ask(session, principal, **kw)

    monkeypatch.setattr(stream_route, "why_no_longer_valid", counted)

    revoked = await _key(client, role="coordinator")
    expires_at = utcnow() + timedelta(seconds=2)
    expiring = await _key(client, role="qp", expires_at=expires_at.isoformat())
    async with httpx.AsyncClient(base_url=live_recheck, timeout=10) as http:
        listeners = {name: Listener(http, key) for name, key in (
            ("revoked", revoked["key"]), ("expiring", expiring["key"]), ("admin", ADMIN_KEY))}
        try:
            for listener in listeners.values():
                assert (await listener.next("ready"))["listening"] is True
            # Re-checks pass while the key is valid (the expiring one may already be gone).
            await until(lambda: checks.count(uuid.UUID(revoked["id"])) >= 2, "two re-checks")
            assert not listeners["revoked"].task.done() and not listeners["admin"].task.done()
            deleted = await client.delete(f"/api/v1/api-keys/{revoked['id']}")
            assert deleted.status_code in (200, 204), deleted.text
            ended = await listeners["revoked"].next("unauthorized")
            assert ended["reason"] == "the API key was revoked"
            await asyncio.wait_for(listeners["revoked"].task, 10)  # the server closed the stream
            ended = await listeners["expiring"].next("unauthorized", wait_s=10)
            assert ended["reason"] == "the API key expired"
            assert utcnow() >= expires_at  # at its expiry, not before
            await asyncio.wait_for(listeners["expiring"].task, 10)
            # The bootstrap admin's stream goes on and still gets events.
            await w.fleet(client, ["SHP-AFTER"])
            assert (await listeners["admin"].next("shipment"))["reference"] == "SHP-AFTER"
            for gone in (revoked, expiring):
                again = await http.get("/api/v1/stream", headers=bearer(gone["key"]))
                assert again.status_code == 401
        finally:
            for listener in listeners.values():
                await listener.close()


async def test_a_stream_whose_key_cannot_be_checked_again_closes(settings: Settings) -> None:
    from app.api.routes.stream import _events
    from app.core.db import plain_url
    from app.dashboard.hub import Hub

    async def database_down() -> str | None:
        raise OSError("connection refused")

    hub = Hub(plain_url(settings.database_url or ""))
    principal = Principal(actor="key:0a1b2c3d", role="coordinator", key_id=uuid.uuid4())
    async def collect() -> list[bytes]:
        return [e.encode() async for e in _events(hub, principal, None, database_down, 0.2)]

    chunks = await asyncio.wait_for(collect(), 10)
    assert chunks[0] == b"retry: 3000\n\n"
    assert chunks[1] == b'event: ready\ndata: {"listening":true}\n\n'
    assert chunks[2:] == [
        b'event: unauthorized\ndata: {"reason":"the API key could not be checked again"}\n\n'
    ]
