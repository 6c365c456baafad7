"""People's sessions through the HTTP stack: the cookie, expiry, logout, lockout, CSRF, scoping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.api.main import create_app
from app.core.models import UserSession
from app.core.settings import Settings
from app.services.auth import token_hash
from tests import factories as f
from tests.api.keys import bearer, make_key
from tests.api.people import PASSWORD, WallClock, browser, make_user, sign_in
from tests.conftest import ADMIN_KEY


@pytest.fixture
async def app(db: AsyncSession, settings: Settings, engine: AsyncEngine) -> AsyncIterator[Any]:
    app = create_app(settings, engine=engine)
    app.state.clock = WallClock()
    yield app


@pytest.fixture
async def admin(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 headers=bearer(ADMIN_KEY)) as client:
        yield client


def _counted(kind: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("coldchain_people_authentications_total",
                                      {"kind": kind, "outcome": outcome})
    return value or 0.0


def _set_cookie(response: httpx.Response) -> list[str]:
    return [p.strip().lower() for p in response.headers["set-cookie"].split(";")]


async def test_login_sets_a_strict_http_only_cookie_stored_only_as_a_hash(
    app: Any, admin: httpx.AsyncClient, db: AsyncSession,
) -> None:
    user = await make_user(admin, "coordinator", email="Coord@Example.org")
    async with browser(app) as page:
        response = await page.post("/api/v1/auth/login",
                                   json={"email": "COORD@example.org", "password": PASSWORD})
        assert response.status_code == 200, response.text
        me = response.json()
        assert (me["kind"], me["actor"], me["role"], me["user"]["id"]) == (
            "session", "user:coord@example.org", "coordinator", user["id"])
        assert me["idle_timeout_s"] == 1800
        cookie = _set_cookie(response)
        token = page.cookies["coldchain_session"]
        assert {"httponly", "samesite=strict", "path=/", "max-age=43200"} <= set(cookie)
        assert "secure" not in cookie
        stored = await db.scalar(select(UserSession).where(UserSession.user_id == user["id"]))
        assert stored is not None and bytes(stored.token_hash) == token_hash(token)
        assert token.encode() not in bytes(stored.token_hash)
        assert (await page.get("/api/v1/auth/me")).json() == {**me, "session_expires_at": me[
            "session_expires_at"]}
    secure = create_app(app.state.settings.model_copy(update={"secure_cookies": True}),
                        engine=app.state.engine)
    async with browser(secure) as page:
        response = await page.post("/api/v1/auth/login",
                                   json={"email": "coord@example.org", "password": PASSWORD})
        assert "secure" in _set_cookie(response)


async def test_a_session_acts_like_a_key_of_its_role_and_site(
    app: Any, admin: httpx.AsyncClient,
) -> None:
    mine = await f.shipment_setup(admin, reference="SHP-MINE", logger_ids=("L-MINE",))
    theirs = await f.shipment_setup(admin, reference="SHP-THEIRS", logger_ids=("L-THEIRS",))
    hostile = await make_user(admin, "site", mine["origin_site_id"])
    await make_user(admin, "coordinator")
    async with sign_in(app, hostile["email"]) as site_user:
        listed = (await site_user.get("/api/v1/shipments")).json()["items"]
        assert [s["reference"] for s in listed] == ["SHP-MINE"]
        assert (await site_user.get(f"/api/v1/shipments/{theirs['id']}")).status_code == 404
        assert (await site_user.get(f"/api/v1/shipments/{mine['id']}")).status_code == 200
        assert (await site_user.get("/api/v1/users")).status_code == 403
        assert (await site_user.post("/api/v1/users", json={
            "email": "me2@example.org", "name": "Me", "role": "admin",
            "password": "granite-kettle-river-9"})).status_code == 403
        assert (await site_user.patch(f"/api/v1/users/{hostile['id']}",
                                      json={"role": "admin"})).status_code == 403
        assert (await site_user.get("/api/v1/audit")).status_code == 403
        assert (await site_user.get(f"/api/v1/shipments/{theirs['id']}/readings")).status_code == 404
        # The Authorization header, not the cookie, decides when both are sent.
        assert (await site_user.get("/api/v1/users", headers=bearer(ADMIN_KEY))).status_code == 200
    async with sign_in(app, "coordinator-all@example.org") as coordinator:
        listed = (await coordinator.get("/api/v1/shipments")).json()["items"]
        assert sorted(s["reference"] for s in listed) == ["SHP-MINE", "SHP-THEIRS"]
        assert (await coordinator.get("/api/v1/users")).status_code == 403
        created = await coordinator.post("/api/v1/sites", json={"name": "Oslo", "country": "NO"})
        assert created.status_code == 201
    [record] = (await admin.get("/api/v1/audit", params={"entity_id": created.json()["id"]})).json()[
        "items"]
    assert (record["actor"], record["role"]) == ("user:coordinator-all@example.org", "coordinator")


async def test_unsafe_requests_by_cookie_need_the_same_origin(
    app: Any, admin: httpx.AsyncClient,
) -> None:
    await make_user(admin, "coordinator")
    async with sign_in(app, "coordinator-all@example.org") as page:
        site = {"name": "Oslo", "country": "NO"}
        for origin in (None, "http://evil.example", "null", "https://test"):
            headers = {"Origin": origin} if origin else {}
            if origin is None:
                page.headers.pop("Origin")
            refused = await page.post("/api/v1/sites", json=site, headers=headers)
            assert refused.status_code == 403, origin
            assert "needs the Origin of this server (http://test)" in refused.json()["detail"]
        page.headers["Origin"] = "http://test"
        assert (await page.post("/api/v1/sites", json=site)).status_code == 201
        page.headers.pop("Origin")
        assert (await page.get("/api/v1/sites")).status_code == 200  # safe methods need none
    # An API key is no ambient credential: no Origin needed.
    assert (await admin.post("/api/v1/sites", json=site)).status_code == 201
    # Nor may another site's page sign someone in (login CSRF).
    async with browser(app) as other:
        other.headers["Origin"] = "http://evil.example"
        login = await other.post("/api/v1/auth/login", json={
            "email": "coordinator-all@example.org", "password": PASSWORD})
        assert login.status_code == 403


async def test_logout_ends_the_session_on_the_server(app: Any, admin: httpx.AsyncClient) -> None:
    user = await make_user(admin, "qp")
    async with sign_in(app, user["email"]) as page:
        token = page.cookies["coldchain_session"]
        out = await page.post("/api/v1/auth/logout")
        assert out.status_code == 204
        assert 'coldchain_session=""' in out.headers["set-cookie"]
    async with browser(app) as replay:  # the old cookie, replayed, is worthless
        replay.cookies.set("coldchain_session", token)
        answer = await replay.get("/api/v1/auth/me")
        assert answer.status_code == 401
        assert answer.json()["detail"] == "the session was ended (signed out): sign in again"
    actions = [r["action"] for r in (await admin.get("/api/v1/audit", params={
        "entity_type": "user", "entity_id": user["id"]})).json()["items"]]
    assert actions == ["create", "login", "logout"]


async def test_idle_and_absolute_expiry_by_the_clock(app: Any, admin: httpx.AsyncClient) -> None:
    clock: WallClock = app.state.clock
    user = await make_user(admin, "coordinator")
    async with sign_in(app, user["email"]) as page:
        # Active every 29 minutes: the idle timeout (30 min) never strikes, 12 h still ends it.
        for _ in range(24):
            clock.advance(minutes=29)
            assert (await page.get("/api/v1/auth/me")).status_code == 200
        clock.advance(minutes=25)  # 11 h 56 min + 25 min
        answer = await page.get("/api/v1/auth/me")
        assert answer.status_code == 401
        assert answer.json()["detail"] == "the session expired: sign in again"
    async with sign_in(app, user["email"]) as page:
        # Requests the page makes by itself do not count as activity.
        clock.advance(minutes=20)
        background = {"X-Coldchain-Background": "true"}
        assert (await page.get("/api/v1/auth/me", headers=background)).status_code == 200
        clock.advance(minutes=10)
        answer = await page.get("/api/v1/auth/me")
        assert answer.status_code == 401
        assert answer.json()["detail"] == "the session expired after inactivity: sign in again"


async def test_disabling_a_user_ends_their_sessions(app: Any, admin: httpx.AsyncClient) -> None:
    user = await make_user(admin, "coordinator")
    async with sign_in(app, user["email"]) as page:
        assert (await page.get("/api/v1/shipments")).status_code == 200
        disabled = await admin.patch(f"/api/v1/users/{user['id']}", json={"disabled": True})
        assert disabled.status_code == 200
        answer = await page.get("/api/v1/shipments")
        assert answer.status_code == 401
        assert answer.json()["detail"] == "the account is disabled: sign in again"
    async with browser(app) as page:
        again = await page.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
        assert again.status_code == 401


async def test_five_failures_lock_the_account_for_15_minutes_even_to_the_right_password(
    app: Any, admin: httpx.AsyncClient,
) -> None:
    clock: WallClock = app.state.clock
    before = {o: _counted("login", o) for o in ("ok", "wrong", "locked")}
    user = await make_user(admin, "qp")
    wrong = {"email": user["email"], "password": "not-the-password-1"}
    right = {"email": user["email"], "password": PASSWORD}
    async with browser(app) as page:
        for _ in range(4):
            assert (await page.post("/api/v1/auth/login", json=wrong)).status_code == 401
        assert (await page.post("/api/v1/auth/login", json=right)).status_code == 200  # resets
        for _ in range(5):
            answer = await page.post("/api/v1/auth/login", json=wrong)
            assert answer.status_code == 401
            assert answer.json()["detail"] == ("the email or password is wrong, or the account is "
                                               "disabled")
        clock.advance(minutes=5)
        locked = await page.post("/api/v1/auth/login", json=right)
        assert locked.status_code == 429
        assert locked.headers["retry-after"] == "600"
        assert locked.json()["detail"].startswith("too many failed attempts: the account is locked")
        clock.advance(minutes=10)
        assert (await page.post("/api/v1/auth/login", json=right)).status_code == 200
    # Watched in metrics too (coldchain_people_authentications_total{kind, outcome}).
    assert {o: _counted("login", o) - n for o, n in before.items()} == {
        "ok": 2, "wrong": 9, "locked": 1}
    records = (await admin.get("/api/v1/audit", params={
        "entity_type": "user", "entity_id": user["id"], "action": "lock"})).json()["items"]
    assert [(r["actor"], r["reason"]) for r in records] == [
        (f"user:{user['email']}", "5 failed login attempts in a row")]


async def test_unknown_emails_answer_as_wrong_passwords_and_count_per_address(
    settings: Settings, engine: AsyncEngine, db: AsyncSession,
) -> None:
    app = create_app(settings.model_copy(update={"auth_failure_burst": 3}), engine=engine)
    async with browser(app, "192.0.2.7") as attacker, browser(app, "192.0.2.8") as bystander:
        for n in range(3):
            answer = await attacker.post("/api/v1/auth/login", json={
                "email": f"nobody{n}@example.org", "password": PASSWORD})
            assert answer.status_code == 401
            assert answer.json()["detail"] == (
                "the email or password is wrong, or the account is disabled")
        throttled = await attacker.post("/api/v1/auth/login", json={
            "email": "nobody@example.org", "password": PASSWORD})
        assert throttled.status_code == 429
        assert throttled.json()["detail"].startswith(
            "too many failed authentications from this address")
        other = await bystander.post("/api/v1/auth/login", json={
            "email": "nobody@example.org", "password": PASSWORD})
        assert other.status_code == 401


async def test_me_for_an_api_key(app: Any, admin: httpx.AsyncClient) -> None:
    site = await f.site(admin)
    key = await make_key(admin, "site", site)
    me = (await admin.get("/api/v1/auth/me", headers=bearer(key))).json()
    assert me == {"kind": "api_key", "actor": f"key:{key.split('_')[1]}", "role": "site",
                  "site_id": site, "user": None, "session_expires_at": None, "idle_timeout_s": None}
    assert (await admin.post("/api/v1/auth/logout", headers=bearer(key))).status_code == 204
