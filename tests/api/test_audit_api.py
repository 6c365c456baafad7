"""GET /audit: every change by a person, filterable and paginated; who may read it; verify."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests import factories as f
from tests.api.keys import bearer, make_key
from tests.db import audit_support as chain


async def _records(client: httpx.AsyncClient, **params: str | int) -> list[dict[str, object]]:
    response = await client.get("/api/v1/audit", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_changes_are_recorded_with_who_what_when_and_before_after(
    client: httpx.AsyncClient,
) -> None:
    before = datetime.now(UTC)
    site = await f.site(client)
    key_response = await client.post("/api/v1/api-keys", json={"role": "qp", "name": "QP Leiden"})
    key = key_response.json()
    revoked = await client.delete(f"/api/v1/api-keys/{key['id']}",
                                  params={"reason": "left the company"})
    assert revoked.status_code == 200

    everything = await _records(client)
    assert [(r["action"], r["entity_type"]) for r in everything] == [
        ("create", "site"), ("create", "api_key"), ("revoke", "api_key")]
    created_site = everything[0]
    assert created_site["entity_id"] == site
    assert created_site["actor"] == "admin-bootstrap" and created_site["role"] == "admin"
    assert created_site["after"]["name"] == "Leiden CTU"  # type: ignore[index]
    assert created_site["prev_hash"] == "00" * 32
    assert datetime.fromisoformat(str(created_site["at"])) >= before
    # The chain is visible: each record names its predecessor's hash.
    assert everything[1]["prev_hash"] == everything[0]["hash"]
    revoke = everything[2]
    assert revoke["reason"] == "left the company"
    assert revoke["before"] == {"revoked_at": None} and revoke["after"]["revoked_at"]  # type: ignore[index]
    # The key's secret and hash never reach the trail.
    assert key["key"] not in str(everything) and "key_hash" not in str(everything)


async def test_filters_combine_and_pages_follow_the_chain(client: httpx.AsyncClient) -> None:
    sites = [await f.site(client, f"Site {i}", "NL") for i in range(5)]
    await f.packaging(client)
    assert [r["entity_id"] for r in await _records(client, entity_type="site")] == sites
    assert [r["entity_type"] for r in await _records(client, entity_type="site",
                                                      entity_id=sites[2])] == ["site"]
    assert len(await _records(client, actor="admin-bootstrap", action="create")) == 6
    assert await _records(client, actor="key:00000000") == []

    seen, cursor = [], None
    for _ in range(10):
        params: dict[str, str | int] = {"limit": 2, "entity_type": "site"}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/audit", params=params)).json()
        seen += [r["entity_id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sites

    now = datetime.now(UTC)
    assert len(await _records(client, **{"from": (now - timedelta(minutes=5)).isoformat()})) == 6
    assert await _records(client, **{"from": (now + timedelta(minutes=5)).isoformat()}) == []
    assert await _records(client, to=(now - timedelta(minutes=5)).isoformat()) == []


async def test_bad_filters_are_problems(client: httpx.AsyncClient) -> None:
    naive = await client.get("/api/v1/audit", params={"from": "2026-11-20T08:00:00"})
    assert naive.status_code == 422 and naive.headers["content-type"] == "application/problem+json"
    backwards = await client.get("/api/v1/audit", params={
        "from": "2026-11-20T08:00:00Z", "to": "2026-11-19T08:00:00Z"})
    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["field"] == "to"
    forged = await client.get("/api/v1/audit", params={"cursor": "WyJub3QtYW4taWQiXQ"})  # ["not-an-id"]
    assert forged.status_code == 422
    assert (await client.get("/api/v1/audit", params={"limit": 1001})).status_code == 422


async def test_who_may_read_the_trail(client: httpx.AsyncClient) -> None:
    site = await f.site(client)
    keys = {role: await make_key(client, role, site if role == "site" else None)
            for role in ("coordinator", "qp", "site")}
    for role, expected in (("coordinator", 200), ("qp", 200), ("site", 403)):
        response = await client.get("/api/v1/audit", headers=bearer(keys[role]))
        assert response.status_code == expected, (role, response.text)
    anonymous = await client.get("/api/v1/audit", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    for role, expected in (("qp", 200), ("coordinator", 403), ("site", 403)):
        response = await client.get("/api/v1/audit/verify", headers=bearer(keys[role]))
        assert response.status_code == expected, (role, response.text)


async def test_verify_endpoint_reports_the_first_broken_record(
    client: httpx.AsyncClient, owner_engine: AsyncEngine
) -> None:
    for i in range(3):
        await f.site(client, f"Site {i}", "DE")
    intact = (await client.get("/api/v1/audit/verify")).json()
    assert intact["ok"] and intact["checked"] == 3 and intact["head_id"] == 3
    async with owner_engine.begin() as conn:  # the owner, behind the service's back
        await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        await conn.execute(text("UPDATE audit_log SET actor = 'someone' WHERE id = 2"))
        await conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
    broken = (await client.get("/api/v1/audit/verify")).json()
    assert (broken["ok"], broken["broken_id"], broken["checked"]) == (False, 2, 1)


async def test_verify_endpoint_checks_a_kept_head_and_reports_gaps(
    client: httpx.AsyncClient, owner_engine: AsyncEngine
) -> None:
    for i in range(4):
        await f.site(client, f"Site {i}", "DE")
    intact = (await client.get("/api/v1/audit/verify")).json()
    head = {"head_id": intact["head_id"], "head_hash": intact["head_hash"]}
    kept = (await client.get("/api/v1/audit/verify", params=head)).json()
    assert (kept["ok"], kept["kept_head_ok"], kept["gaps"], kept["missing"]) == (True, True, [], 0)

    await chain.rehash(owner_engine, delete=(2,))  # deleted, the rest re-linked and re-hashed
    alone = (await client.get("/api/v1/audit/verify")).json()
    assert (alone["ok"], alone["broken_id"], alone["missing"]) == (False, 3, 1)
    assert alone["gaps"] == [{"first_missing_id": 2, "last_missing_id": 2}]
    checked = (await client.get("/api/v1/audit/verify", params=head)).json()
    assert (checked["ok"], checked["kept_head_ok"], checked["broken_id"]) == (False, False, 4)
    assert checked["problem"].startswith("record #4 no longer has the kept hash")

    for params, field in (({"head_id": 4}, "head_hash"), ({"head_hash": "ab" * 32}, "head_id")):
        refused = await client.get("/api/v1/audit/verify", params=params)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == field
    for bad in ({"head_id": 0, "head_hash": "ab" * 32}, {"head_id": 4, "head_hash": "zz" * 32}):
        assert (await client.get("/api/v1/audit/verify", params=bad)).status_code == 422
