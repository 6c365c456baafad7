"""API keys of every role for tests, created through the API (so creation itself is exercised)."""

from __future__ import annotations

from typing import Any

import httpx


async def make_key(
    client: httpx.AsyncClient, role: str, site_id: str | None = None, **extra: Any
) -> str:
    body: dict[str, Any] = {"role": role, "name": f"test {role}", **extra}
    if site_id is not None:
        body["site_id"] = site_id
    response = await client.post("/api/v1/api-keys", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
