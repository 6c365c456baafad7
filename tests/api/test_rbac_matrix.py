"""Every role × every endpoint of the app: allowed, 403, or 404 for another site's object.

The endpoints come from the app's own route table, so a new endpoint is tested automatically;
one without a declared expectation in EXPECT FAILS. To declare one, add a line:

    "METHOD /path/{param}": Access(ROLES_ALLOWED, body=lambda w, n: {...}),

- roles: who may call it besides admin (admin is always allowed, except on decisions on the
  record — release, acknowledge, resolve, correct — declared with `decided_by(...)`); PUBLIC
  needs no key.
- body: a valid JSON body for POST/PUT/PATCH (`w` is tests/api/rbac_world.World, `n` a unique number).
- A path parameter is filled from World.own / World.other by its name (add new ones in
  rbac_world.build_world); a site key calling with
  another site's object must get 404 with the same answer as for an id that does not exist.
- Every answer to the site key is searched for the other site's identifiers (a leak).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import Mount, Route

from app.api.main import create_app
from app.core.settings import Settings
from tests import factories as f
from tests.api.asgi_call import Answer, call
from tests.api.keys import bearer
from tests.api.people import ORIGIN, PASSWORD, make_user
from tests.api.rbac_world import World, build_world
from tests.conftest import ADMIN_KEY, truncate_all

ROLES = ("admin", "coordinator", "qp", "site")
ALL = frozenset(ROLES)
PUBLIC = frozenset({"public"})
Body = Callable[[World, int], dict[str, Any]]


@dataclass(frozen=True)
class Access:
    roles: frozenset[str]
    body: Body | None = None
    # Path parameter → another World.own entry to use (e.g. a shipment that can be released).
    values: dict[str, str] = field(default_factory=dict)
    # Path parameters consumed by the call (DELETE): each role gets its own `name@role` object.
    per_role: tuple[str, ...] = ()
    # An endless event stream: read past the live events World.stream_trigger causes.
    stream: bool = False
    # The call ends the caller's session: by session, each call signs in afresh.
    ends_session: bool = False
    # As `values`, for the run by session (a state change the run by key already made).
    session_values: dict[str, str] = field(default_factory=dict)
    # Roles allowed by API key when fewer than `roles` (a signature: people only).
    by_key: frozenset[str] | None = None
    # The body's fields sent as multipart/form-data (a `file` value: a text file's content).
    multipart: bool = False

    @property
    def public(self) -> bool:
        return self.roles == PUBLIC


def roles(*names: str) -> frozenset[str]:
    return frozenset({"admin", *names})


def decided_by(*names: str) -> frozenset[str]:
    """A decision on the GxP record: only these business roles, never admin."""
    return frozenset(names)


ADMIN = roles()
STAFF = roles("coordinator", "qp")  # everyone but site keys

EXPECT: dict[str, Access] = {
    # Operations and documentation: unauthenticated by contract.
    "GET /healthz": Access(PUBLIC),
    "GET /readyz": Access(PUBLIC),
    "GET /metrics": Access(PUBLIC),
    "GET /openapi.json": Access(PUBLIC),
    "GET /docs": Access(PUBLIC),
    "GET /docs/oauth2-redirect": Access(PUBLIC),
    "GET /redoc": Access(PUBLIC),
    # Reference data: coordinators edit, everyone reads (a site only its own site, the lanes
    # from or to it and those its shipments travel, and its shipments' products and packaging).
    "POST /api/v1/sites": Access(roles("coordinator"), body=lambda w, n: {
        "name": f"Site {n}", "country": "FR"}),
    "GET /api/v1/sites": Access(ALL),
    "GET /api/v1/sites/{site_id}": Access(ALL),
    "POST /api/v1/products": Access(roles("coordinator"), body=lambda w, n: {
        "name": f"Product {n}", "temp_min_c": -80, "temp_max_c": -60, "stability_budget_s": 0}),
    "GET /api/v1/products": Access(ALL),
    "GET /api/v1/products/{product_id}": Access(ALL),
    "POST /api/v1/packaging": Access(roles("coordinator"), body=lambda w, n: {
        "name": f"Dry ice {n}", "qualified_hold_h": 72}),
    "GET /api/v1/packaging": Access(ALL),
    "GET /api/v1/packaging/requalification-due": Access(ALL),
    "GET /api/v1/packaging/{packaging_id}": Access(ALL),
    "POST /api/v1/lanes": Access(roles("coordinator"), body=lambda w, n: {
        "name": f"Lane {n}", "origin_site_id": w.own["site_id"],
        "destination_site_id": w.hub_site, "expected_transit_h": 10, "max_transit_h": 20,
        "corridor_km": 50}),
    "GET /api/v1/lanes": Access(ALL),
    "GET /api/v1/lanes/{lane_id}": Access(ALL),
    "POST /api/v1/loggers": Access(roles("coordinator"), body=lambda w, n: {"id": f"NEW-{n}"}),
    "GET /api/v1/loggers": Access(STAFF),
    "GET /api/v1/loggers/{logger_id}": Access(STAFF),
    # Shipments: a site sees (and records custody events on) only shipments from or to it.
    "POST /api/v1/shipments": Access(roles("coordinator"), body=lambda w, n: {
        "reference": f"NEW-{n}", "lane_id": w.own["lane_id"], "product_id": w.own["product_id"],
        "packaging_id": w.own["packaging_id"], "logger_ids": [f"SPARE-{w.take('spare')}"],
        "packed_at": f.T0.isoformat()}),
    "GET /api/v1/shipments": Access(ALL),
    "GET /api/v1/shipments/{shipment_id}": Access(ALL),
    "POST /api/v1/shipments/{shipment_id}/events": Access(roles("coordinator", "site"), body=(
        lambda w, n: {"type": "departed", "at": (f.T0 + timedelta(hours=1)).isoformat()}),
        session_values={"shipment_id": "fresh_shipment_id"}),
    "GET /api/v1/shipments/{shipment_id}/events": Access(ALL),
    "POST /api/v1/shipments/{shipment_id}/what-if": Access(
        ALL, body=lambda w, n: {"customs_hold_h": 48, "delay_h": n % 5}),
    # Documents: coordinators and the shipment's sites attach; whoever sees the shipment reads
    # them and its readiness.
    "POST /api/v1/shipments/{shipment_id}/documents": Access(roles("coordinator", "site"), body=(
        lambda w, n: {"kind": "import_license", "file": f"licence {n}"}), multipart=True),
    "GET /api/v1/shipments/{shipment_id}/documents": Access(ALL),
    "GET /api/v1/shipments/{shipment_id}/documents/{document_id}": Access(ALL),
    "GET /api/v1/shipments/{shipment_id}/readiness": Access(ALL),
    "POST /api/v1/shipments/{shipment_id}/events/{event_id}/corrections": Access(
        decided_by("coordinator"), body=lambda w, n: {
            "at": (f.T0 + timedelta(hours=20)).isoformat(), "reason": f"POD time checked ({n})"},
        values={"shipment_id": "delivered_shipment_id"}),
    "GET /api/v1/shipments/{shipment_id}/readings": Access(ALL),
    "GET /api/v1/shipments/{shipment_id}/track": Access(ALL),
    "GET /api/v1/stream": Access(ALL, stream=True),
    "GET /api/v1/shipments/{shipment_id}/report": Access(ALL),
    # A QP person's electronic signature (password re-entered): never by an API key.
    "POST /api/v1/shipments/{shipment_id}/release": Access(
        decided_by("qp"), by_key=frozenset(), body=lambda w, n: {
            "decision": "released", "reason": "record complete",
            "signature": {"password": PASSWORD}},
        values={"shipment_id": "delivered_shipment_id"},
        session_values={"shipment_id": "delivered2_shipment_id"}),
    "GET /api/v1/lanes/{lane_id}/performance": Access(STAFF),
    # Alerts: everyone reads (a site its own shipments'); sites and QPs may acknowledge.
    "GET /api/v1/alerts": Access(ALL),
    "GET /api/v1/alerts/{alert_id}": Access(ALL),
    "POST /api/v1/alerts/{alert_id}/ack": Access(decided_by("coordinator", "site", "qp"), body=(
        lambda w, n: {"comment": f"seen, box checked ({n})"}),
        session_values={"alert_id": "alert2_id"}),
    "POST /api/v1/alerts/{alert_id}/resolve": Access(decided_by("coordinator", "qp"), body=(
        lambda w, n: {"comment": f"sensor lost, product checked ({n})"}),
        session_values={"alert_id": "alert2_id"}),
    "GET /api/v1/shipments/{shipment_id}/excursions": Access(ALL),
    "GET /api/v1/ingest/rejections": Access(roles("coordinator")),
    # Webhooks: coordinators manage all subscriptions, a site key its own site's.
    "POST /api/v1/webhooks": Access(roles("coordinator", "site"), body=lambda w, n: {
        "url": f"http://127.0.0.1:9/hook-{n}"}),
    "GET /api/v1/webhooks": Access(roles("coordinator", "site")),
    "GET /api/v1/webhooks/{webhook_id}": Access(roles("coordinator", "site")),
    "PATCH /api/v1/webhooks/{webhook_id}": Access(roles("coordinator", "site"), body=(
        lambda w, n: {"description": f"edited {n}"})),
    "DELETE /api/v1/webhooks/{webhook_id}": Access(roles("coordinator", "site"),
                                                   per_role=("webhook_id",)),
    "POST /api/v1/webhooks/{webhook_id}/rotate-secret": Access(
        roles("coordinator", "site"), body=lambda w, n: {"overlap_s": 60}),
    "GET /api/v1/webhooks/{webhook_id}/deliveries": Access(roles("coordinator", "site")),
    "GET /api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}": Access(
        roles("coordinator", "site")),
    "POST /api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry": Access(
        roles("coordinator", "site")),
    # The dashboard page and its files: public (the data behind them needs a key).
    "GET /": Access(PUBLIC),
    "MOUNT /static": Access(PUBLIC),
    # Keys and the audit trail.
    "POST /api/v1/api-keys": Access(ADMIN, body=lambda w, n: {"role": "qp", "name": f"k{n}"}),
    "GET /api/v1/api-keys": Access(ADMIN),
    "GET /api/v1/api-keys/{key_id}": Access(ADMIN),
    "DELETE /api/v1/api-keys/{key_id}": Access(ADMIN),
    "GET /api/v1/audit": Access(STAFF),
    # People: accounts are the admin's alone.
    "POST /api/v1/users": Access(ADMIN, body=lambda w, n: {
        "email": f"person{n}@example.org", "name": f"Person {n}", "role": "coordinator",
        "password": "river-otter-lamp-42"}),
    "GET /api/v1/users": Access(ADMIN),
    "GET /api/v1/users/{user_id}": Access(ADMIN),
    "PATCH /api/v1/users/{user_id}": Access(ADMIN, body=lambda w, n: {"name": f"Renamed {n}"}),
    "POST /api/v1/auth/login": Access(PUBLIC, body=lambda w, n: {
        "email": "person@example.org", "password": PASSWORD}),
    "POST /api/v1/auth/logout": Access(ALL, ends_session=True),
    "GET /api/v1/auth/me": Access(ALL),
    "GET /api/v1/audit/verify": Access(roles("qp")),
    # The alert mail log: who was mailed what, and what failed.
    "GET /api/v1/notifications/mail": Access(roles("coordinator")),
    "GET /api/v1/notifications/mail/{mail_id}": Access(roles("coordinator")),
}

# Path parameters naming an object that belongs to a site: another site's must answer 404.
SITE_SCOPED = {"shipment_id", "alert_id", "site_id", "webhook_id", "subscription_id",
               "delivery_id", "logger_id", "lane_id", "product_id", "packaging_id", "event_id",
               "document_id"}
# Decisions on the record that admin may not make (tests/api/test_access_scopes.py shows why).
DECISIONS = {"POST /api/v1/shipments/{shipment_id}/release", "POST /api/v1/alerts/{alert_id}/ack",
             "POST /api/v1/alerts/{alert_id}/resolve",
             "POST /api/v1/shipments/{shipment_id}/events/{event_id}/corrections"}


def _routes(app: Any) -> list[Any]:
    """The app's routes, included routers flattened (FastAPI ≥ 0.130 keeps them nested)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        return list(app.routes)
    return list(iter_route_contexts(app.routes))


def _endpoints() -> list[tuple[str, str, str]]:
    """(key, method, path) for every route of the app; mounts must be declared too."""
    app = create_app(Settings(database_url="postgresql://unused/x", mqtt_url="mqtt://unused"))
    found = []
    for route in _routes(app):
        original = getattr(route, "original_route", route)
        if isinstance(original, Mount):
            found.append((f"MOUNT {route.path}", "MOUNT", route.path))
        elif isinstance(original, Route):
            for method in sorted((route.methods or set()) - {"HEAD", "OPTIONS"}):
                found.append((f"{method} {route.path}", method, route.path))
        else:
            found.append((f"UNKNOWN {route!r}", "UNKNOWN", str(route)))
    assert len(found) > 20, f"route discovery found too little: {found}"
    return found


ENDPOINTS = _endpoints()


@pytest.fixture(scope="module")
async def world_app(
    settings: Settings, engine: AsyncEngine, superuser_engine: AsyncEngine
) -> AsyncIterator[tuple[Any, World]]:
    await truncate_all(superuser_engine)
    app = create_app(settings.model_copy(update={"rate_limit_per_s": 0}), engine=engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     headers=bearer(ADMIN_KEY)) as admin:
            world = await build_world(admin, engine)
            for role in ROLES:  # a person of every role, the site's at site A
                user = await make_user(admin, role, world.own["site_id"] if role == "site" else None)
                world.emails[role] = user["email"]
        for role in ROLES:
            world.sessions[role] = await _session(app, world.emails[role])
        yield app, world
    await truncate_all(superuser_engine)


async def _session(app: Any, email: str) -> str:
    """A fresh session cookie of the person, signed in through the API."""
    answer = await call(app, "POST", "/api/v1/auth/login",
                        json_body={"email": email, "password": PASSWORD})
    assert answer.status == 200, answer.text
    return answer.headers["set-cookie"].split(";")[0]


def _multipart(fields: dict[str, str]) -> tuple[bytes, str]:
    parts = [
        f'--rbac\r\nContent-Disposition: form-data; name="{name}"'
        + ('; filename="f.txt"\r\nContent-Type: text/plain' if name == "file" else "")
        + f"\r\n\r\n{value}\r\n" for name, value in fields.items()]
    return ("".join(parts) + "--rbac--\r\n").encode(), "multipart/form-data; boundary=rbac"


def _fill(path: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        if name not in values:
            pytest.fail(f"no test value for path parameter {{{name}}}: add it to World in "
                        "tests/api/test_rbac_matrix.py")
        return values[name]

    return re.sub(r"\{([^}]+)\}", one, path)


def _query_params(app: Any, method: str, path: str) -> list[str]:
    operation = app.openapi().get("paths", {}).get(path, {}).get(method.lower(), {})
    return [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]


def _allowed(answer: Answer) -> bool:
    return answer.status not in (401, 403, 404, 405) and answer.status < 500


def _assert_no_leak(world: World, answer: Answer, what: str, asked: tuple[str, ...] = ()) -> None:
    """No identifier of the other site's world in the answer (bar those the caller sent)."""
    for marker in world.markers:
        if marker not in asked:
            assert marker not in answer.text, f"{what} leaks another site's data ({marker!r})"


def _without(text: str, *ids: str) -> str:
    for value in ids:
        text = text.replace(value, "<id>")
    return text


@pytest.mark.parametrize("credential", ["key", "session"])
@pytest.mark.parametrize(("key", "method", "path"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
async def test_role_matrix(
    world_app: tuple[Any, World], key: str, method: str, path: str, credential: str,
) -> None:
    """Each role by API key, and by a person's session cookie (from the page's own origin)."""
    app, world = world_app
    access = EXPECT.get(key)
    if access is None:
        pytest.fail(f"no access rule declared for {key}: add it to EXPECT in {__file__}")
    if method == "MOUNT" or (credential == "session" and access.public):
        return
    values = {**access.values, **(access.session_values if credential == "session" else {})}
    own = {**world.own, **{param: world.own[alias] for param, alias in values.items()}}
    own_path = _fill(path, own)

    def own_path_for(role: str) -> str:
        suffix = f"@{role}" + ("@session" if credential == "session" else "")
        mine = {p: world.own[f"{p}{suffix}"] for p in access.per_role if f"{p}{suffix}" in world.own}
        return _fill(path, {**own, **mine})

    async def request(role: str | None, target: str, **kw: Any) -> Answer:
        headers: dict[str, str] = {}
        if role and credential == "key":
            headers = bearer(world.keys[role])
        elif role:
            cookie = await _session(app, world.emails[role]) if access.ends_session else (
                world.sessions[role])
            headers = {"Cookie": cookie, "Origin": ORIGIN}
        body = access.body(world, world.next()) if access.body else None
        if access.stream and role is not None:
            # Past the first chunk: live events of both sites, the own site's last.
            kw.update(until=b"SHP-OWN-7731", trigger=world.stream_trigger)
        if access.multipart:
            kw.update(raw_body=_multipart(body or {}))
            body = None
        return await call(app, method, target, headers=headers, json_body=body, **kw)

    anonymous = await request(None, own_path)
    if access.public:
        assert anonymous.status not in (401, 403) and anonymous.status < 500, anonymous.text
        return
    assert anonymous.status == 401, f"{key} without a key answered {anonymous.status}"
    assert anonymous.headers["content-type"] == "application/problem+json"

    allowed_roles = access.by_key if credential == "key" and access.by_key is not None else (
        access.roles)
    allowed_statuses = []
    for role in ROLES:
        answer = await request(role, own_path_for(role))
        if role in allowed_roles:
            assert _allowed(answer), f"{role} should be allowed {key}: {answer.status} {answer.text}"
            if method == "GET":
                assert answer.status == 200, f"{role} {key}: {answer.status} {answer.text}"
            allowed_statuses.append(answer.status)
        else:
            assert answer.status == 403, f"{role} should get 403 on {key}: {answer.status}"
            assert answer.headers["content-type"] == "application/problem+json"
        if role == "site":
            _assert_no_leak(world, answer, f"{key} as site")
        if access.stream and answer.status == 200:
            assert "SHP-OWN-7731" in answer.text, f"{role}: no live event on {key}"
            # Staff saw the other site's event (sent first); the site key must not have.
            assert ("SHP-OTHER-7731" in answer.text) == (role != "site"), f"{role} on {key}"
    assert any(200 <= s < 300 for s in allowed_statuses) or not allowed_roles, (
        f"{key}: no allowed role succeeded")

    scoped = [n for n in re.findall(r"\{([^}:]+)", path) if n in SITE_SCOPED]
    if "site" in allowed_roles and scoped:
        other = await request("site", _fill(path, {**own, **{n: world.other[n] for n in scoped}}))
        ghost_ids = {n: str(uuid.uuid4()) for n in scoped}
        ghost = await request("site", _fill(path, {**own, **ghost_ids}))
        assert other.status == 404, f"site got {other.status} for another site's object on {key}"
        assert ghost.status == 404
        assert _without(other.text, *(world.other[n] for n in scoped)) == _without(
            ghost.text, *ghost_ids.values()), "a hidden object must look exactly like a missing one"
        _assert_no_leak(world, other, f"{key} (other site's object)",
                        tuple(world.other[n] for n in scoped))

    if "site" in allowed_roles:  # filters naming another site's objects must not leak either
        for name in _query_params(app, method, path):
            if name in world.other and name in SITE_SCOPED:
                answer = await request("site", own_path, params={name: world.other[name]})
                assert answer.status in (200, 403, 404, 422), f"{key}?{name}=: {answer.status}"
                _assert_no_leak(world, answer, f"{key}?{name}=<other site's>",
                                (world.other[name],))


async def test_every_declared_role_rule_names_real_roles() -> None:
    for key, access in EXPECT.items():
        assert access.roles <= ALL or access.public, key
        if key in DECISIONS:
            assert "admin" not in access.roles, f"{key}: a decision on the record, never admin's"
        else:
            assert "admin" in access.roles or access.public, f"{key}: admin is always allowed"
