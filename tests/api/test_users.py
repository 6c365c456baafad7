"""/users (admin only): accounts created and changed through the API, audited, passwords never shown."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import User
from tests import factories as f
from tests.api.keys import bearer, make_key

PASSWORD = "river-otter-lamp-42"


def person(email: str = "Alice.Martin@Example.org", role: str = "qp", **over: Any) -> dict[str, Any]:
    return {"email": email, "name": "Alice Martin", "role": role, "password": PASSWORD, **over}


async def _audit(client: httpx.AsyncClient, user_id: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/audit", params={"entity_type": "user", "entity_id": user_id})
    assert response.status_code == 200
    return list(response.json()["items"])


async def test_admin_creates_a_person_stored_lower_case_with_an_argon2id_hash(
    client: httpx.AsyncClient, db: AsyncSession,
) -> None:
    response = await client.post("/api/v1/users", json=person())
    assert response.status_code == 201, response.text
    user = response.json()
    assert user["email"] == "alice.martin@example.org"
    assert (user["name"], user["role"], user["site_id"], user["disabled"]) == (
        "Alice Martin", "qp", None, False)
    assert (user["notify_email"], user["notify_min_severity"]) == (False, "critical")
    assert "password" not in user and PASSWORD not in response.text and "argon2" not in response.text
    row = await db.scalar(select(User).where(User.id == user["id"]))
    assert row is not None and row.password_hash.startswith("$argon2id$")
    [created] = await _audit(client, user["id"])
    assert created["action"] == "create" and created["actor"] == "admin-bootstrap"
    assert created["after"]["email"] == "alice.martin@example.org"
    assert "password_hash" not in created["after"] and PASSWORD not in str(created)
    assert (await client.get(f"/api/v1/users/{user['id']}")).json() == user
    listed = (await client.get("/api/v1/users")).json()
    assert listed == {"items": [user], "next_cursor": None}


async def test_one_account_per_email_whatever_its_case(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/users", json=person())).status_code == 201
    again = await client.post("/api/v1/users", json=person("ALICE.MARTIN@example.ORG"))
    assert again.status_code == 409
    assert again.json()["errors"] == [{"field": "email", "message":
                                       "a user with email alice.martin@example.org already exists"}]


async def test_weak_passwords_and_bad_scopes_are_refused(client: httpx.AsyncClient) -> None:
    site = await f.site(client)
    cases = [
        (person(password="short-pass1"), "password", "password: must be at least 12 characters"),
        (person(password="qwerty123456"), "password", "password: is one of the most common passwords"),
        (person(password="alice.martin1"), "password", "password: is too easy to guess"),
        (person(role="site"), "site_id", "site_id: a site user needs site_id"),
        (person(site_id=site), "site_id", "site_id: only site users belong to a site"),
        (person(role="site", site_id="00000000-0000-4000-8000-000000000000"), "site_id",
         "site_id: no such site: 00000000-0000-4000-8000-000000000000"),
    ]
    for body, field, detail in cases:
        response = await client.post("/api/v1/users", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"] == detail
        assert response.json()["errors"][0]["field"] == field
    bad_email = await client.post("/api/v1/users", json=person("no-at-sign.example.org"))
    assert bad_email.status_code == 422
    assert (await client.get("/api/v1/users")).json()["items"] == []


async def test_changes_are_audited_and_a_new_password_only_as_changed(
    client: httpx.AsyncClient, db: AsyncSession,
) -> None:
    site = await f.site(client)
    user = (await client.post("/api/v1/users", json=person(role="site", site_id=site))).json()
    old_hash = (await db.scalar(select(User.password_hash).where(User.id == user["id"])))
    changed = await client.patch(f"/api/v1/users/{user['id']}", json={
        "role": "coordinator", "notify_email": True, "notify_min_severity": "warning",
        "password": "new-granite-kettle-7"})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["role"], body["site_id"], body["notify_email"], body["notify_min_severity"]) == (
        "coordinator", None, True, "warning")
    db.expire_all()
    assert await db.scalar(select(User.password_hash).where(User.id == user["id"])) != old_hash
    _, update = await _audit(client, user["id"])
    assert update["action"] == "update"
    assert update["before"] == {"role": "site", "site_id": site, "notify_email": False,
                                "notify_min_severity": "critical", "password": None,
                                "password_changed_at": update["before"]["password_changed_at"]}
    assert update["after"]["password"] == "<changed>"
    assert "new-granite-kettle-7" not in str(update)
    weak = await client.patch(f"/api/v1/users/{user['id']}", json={"password": "password1234"})
    assert weak.status_code == 422
    nulls = await client.patch(f"/api/v1/users/{user['id']}", json={"role": None})
    assert nulls.status_code == 422 and nulls.json()["detail"] == "role: may not be null"
    to_site = await client.patch(f"/api/v1/users/{user['id']}", json={"role": "site"})
    assert to_site.json()["detail"] == "site_id: a site user needs site_id"
    disabled = await client.patch(f"/api/v1/users/{user['id']}", json={"disabled": True})
    assert disabled.json()["disabled"] is True
    assert len(await _audit(client, user["id"])) == 3
    missing = await client.patch("/api/v1/users/00000000-0000-4000-8000-000000000000", json={})
    assert missing.status_code == 404


async def test_only_admin_manages_people(client: httpx.AsyncClient) -> None:
    site = await f.site(client)
    user = (await client.post("/api/v1/users", json=person())).json()
    keys = {role: await make_key(client, role, site if role == "site" else None)
            for role in ("coordinator", "qp", "site")}
    for role, key in keys.items():
        headers = bearer(key)
        assert (await client.get("/api/v1/users", headers=headers)).status_code == 403, role
        assert (await client.get(f"/api/v1/users/{user['id']}", headers=headers)).status_code == 403
        created = await client.post("/api/v1/users", headers=headers, json=person(f"{role}@x.org"))
        assert created.status_code == 403, role
        patched = await client.patch(f"/api/v1/users/{user['id']}", headers=headers,
                                     json={"role": "admin"})
        assert patched.status_code == 403, role
    assert (await client.get(f"/api/v1/users/{user['id']}")).json()["role"] == "qp"
