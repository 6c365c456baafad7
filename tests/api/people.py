"""People for tests: accounts made through the API, signed in through the API, a movable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx

from app.core.models import utcnow

PASSWORD = "river-otter-lamp-42"
ORIGIN = "http://test"  # the ASGI test client's own origin (base_url)


class WallClock:
    """The app's wall clock (`app.state.clock`), moved by tests instead of sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


async def make_user(
    admin: httpx.AsyncClient, role: str, site_id: str | None = None, *,
    email: str | None = None, password: str = PASSWORD, **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"email": email or f"{role}-{site_id or 'all'}@example.org",
                            "name": f"{role.title()} Person", "role": role, "password": password,
                            **extra}
    if site_id is not None:
        body["site_id"] = site_id
    response = await admin.post("/api/v1/users", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def browser(app: Any, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """A client like the page: no API key, cookies kept, its own Origin on every request."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=ORIGIN, headers={"Origin": ORIGIN})


@asynccontextmanager
async def sign_in(app: Any, email: str, password: str = PASSWORD) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in as this person (through POST /auth/login)."""
    async with browser(app) as client:
        response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        yield client


def app_of(client: httpx.AsyncClient) -> Any:
    """The ASGI app behind an in-process client (the `client` fixture's)."""
    return client._transport.app  # type: ignore[attr-defined]


def signed(decision: str, reason: str, password: str = PASSWORD, **signature: str) -> dict[str, Any]:
    """A release body signed with the password (and optionally the email) re-entered."""
    return {"decision": decision, "reason": reason,
            "signature": {"password": password, **signature}}


@asynccontextmanager
async def qp_person(client: httpx.AsyncClient, **extra: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A QP person created by the admin `client` and signed in on the same app."""
    user = await make_user(client, "qp", **extra)
    async with sign_in(app_of(client), user["email"]) as page:
        yield page
