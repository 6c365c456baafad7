"""Input hardening: size limits, NUL, strict bodies, rate limits, key expiry/revocation, no traces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.api.main import create_app
from app.core.settings import Settings
from tests import factories as f
from tests.api.keys import bearer, make_key
from tests.conftest import ADMIN_KEY

PROBLEM = "application/problem+json"


def _client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test",
                             headers={"Authorization": f"Bearer {ADMIN_KEY}"})


@pytest.fixture
async def strict_client(
    db: AsyncSession, settings: Settings, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with a small body limit and a tight rate limit."""
    tight = settings.model_copy(update={"max_request_bytes": 4096, "rate_limit_per_s": 0.2,
                                        "rate_limit_burst": 5})
    async with _client(create_app(tight, engine=engine)) as http:
        yield http


async def test_oversized_bodies_are_refused_before_any_handler(
    strict_client: httpx.AsyncClient,
) -> None:
    big = {"name": "x" * 5000, "country": "NL"}
    declared = await strict_client.post("/api/v1/sites", json=big)
    assert declared.status_code == 413
    assert declared.headers["content-type"] == PROBLEM
    assert declared.json()["max_bytes"] == 4096

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while reading
        for _ in range(10):
            yield b" " * 1000

    streamed = await strict_client.post("/api/v1/sites", content=chunks(),
                                        headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    bad_length = await strict_client.post("/api/v1/sites", content=b"{}",
                                          headers={"Content-Length": "12abc"})
    assert bad_length.status_code == 400
    assert (await strict_client.get("/api/v1/sites")).status_code == 200  # not blocked for good


async def test_nul_characters_are_refused_not_crashing_the_database(
    client: httpx.AsyncClient,
) -> None:
    in_body = await client.post("/api/v1/sites", json={"name": "Lei\x00den", "country": "NL"})
    assert in_body.status_code == 422 and in_body.headers["content-type"] == PROBLEM
    in_query = await client.get("/api/v1/audit", params={"actor": "a\x00b"})
    assert in_query.status_code == 422
    in_path = await client.get("/api/v1/loggers/LOG%00-1")
    assert in_path.status_code == 422
    assert (await client.get("/api/v1/audit")).json()["items"] == []  # nothing was written


async def test_unknown_fields_and_naive_timestamps_are_rejected(client: httpx.AsyncClient) -> None:
    unknown = await client.post("/api/v1/sites", json={"name": "A", "country": "NL", "admin": True})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "admin"
    naive = await client.post("/api/v1/api-keys", json={"role": "qp",
                                                       "expires_at": "2030-01-01T00:00:00"})
    assert naive.status_code == 422


async def test_rate_limit_is_per_key_and_answers_429_with_retry_after(
    strict_client: httpx.AsyncClient,
) -> None:
    other = await make_key(strict_client, "coordinator")
    statuses = [(await strict_client.get("/api/v1/sites")).status_code for _ in range(6)]
    assert statuses[:4] == [200] * 4 and statuses[-1] == 429  # 1 token went on creating the key
    limited = await strict_client.get("/api/v1/sites")
    assert limited.headers["content-type"] == PROBLEM
    assert int(limited.headers["retry-after"]) >= 1
    assert (await strict_client.get("/api/v1/sites", headers=bearer(other))).status_code == 200


async def test_expired_and_revoked_keys_are_refused(client: httpx.AsyncClient) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1)
    expiring = (await client.post("/api/v1/api-keys",
                                  json={"role": "qp", "expires_at": soon.isoformat()})).json()
    revocable = await client.post("/api/v1/api-keys", json={"role": "coordinator"})
    revocable_key, revocable_id = revocable.json()["key"], revocable.json()["id"]
    assert (await client.get("/api/v1/sites", headers=bearer(revocable_key))).status_code == 200

    first = await client.delete(f"/api/v1/api-keys/{revocable_id}")
    assert first.status_code == 200 and first.json()["revoked_at"] is not None
    refused = await client.get("/api/v1/sites", headers=bearer(revocable_key))
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    again = await client.delete(f"/api/v1/api-keys/{revocable_id}")
    assert again.status_code == 200 and again.json()["revoked_at"] == first.json()["revoked_at"]

    await asyncio.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    assert (await client.get("/api/v1/sites", headers=bearer(expiring["key"]))).status_code == 401
    forged = expiring["key"][:-4] + "AAAA"
    assert (await client.get("/api/v1/sites", headers=bearer(forged))).status_code == 401

    active = (await client.get("/api/v1/api-keys", params={"active": "true"})).json()["items"]
    assert {k["id"] for k in active}.isdisjoint({expiring["id"], revocable_id})
    inactive = (await client.get("/api/v1/api-keys", params={"active": "false"})).json()["items"]
    assert {k["id"] for k in inactive} == {expiring["id"], revocable_id}
    one = await client.get(f"/api/v1/api-keys/{revocable_id}")
    assert one.status_code == 200 and one.json()["revoked_at"] is not None and "key" not in one.json()


async def test_keys_cannot_be_born_expired_and_scope_is_enforced_by_the_database(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    born_expired = await client.post("/api/v1/api-keys",
                                     json={"role": "qp", "expires_at": past.isoformat()})
    assert born_expired.status_code == 422
    assert born_expired.json()["errors"][0]["field"] == "expires_at"
    with pytest.raises(DBAPIError, match="ck_api_keys_site_scope"):
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO api_keys (id, prefix, key_hash, role, created_at) "
                "VALUES (gen_random_uuid(), 'deadbeef', '\\x00', 'site', now())"))


async def test_errors_never_carry_a_stack_trace(
    db: AsyncSession, settings: Settings, engine: AsyncEngine
) -> None:
    app = create_app(settings, engine=engine)

    async def boom() -> None:
        raise RuntimeError("secret internals at /srv/app.py line 42")

    app.add_api_route("/boom", boom)
    async with _client(app) as http:
        response = await http.get("/boom")
    assert response.status_code == 500 and response.headers["content-type"] == PROBLEM
    assert "secret" not in response.text and "Traceback" not in response.text


async def test_api_answers_are_not_cached_or_sniffed(client: httpx.AsyncClient) -> None:
    await f.site(client)
    response = await client.get("/api/v1/sites")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
