"""Schemathesis over the OpenAPI schema, in-process, as every role, on existing objects.

Checks: no 5xx, every answer conforms to the schema, and nothing of the other site's world reaches
a site key (unless the request itself named it). The fuzzer's schema offers placeholders next to
every `*_id` path, query and body field, which hooks turn into ids of the seeded world
(tests/api/rbac_world.py: two sites with lanes, products, packaging, shipments, custody events,
alerts, webhooks and deliveries; and an id no object has): requests reach real objects instead of
answering 404 to random ids. Each example draws its role; MIN_EXAMPLES per operation,
derandomised (a run is reproducible). The live stream never ends: tests/api/test_rbac_matrix.py
reads it.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error, response_schema_conformance
from sqlalchemy.ext.asyncio import AsyncEngine

from app.api.main import create_app
from app.core.settings import Settings
from tests.api.keys import bearer
from tests.api.rbac_world import World, build_world
from tests.conftest import ADMIN_KEY, truncate_all

MIN_EXAMPLES = 100
ROLES = ("admin", "coordinator", "qp", "site")
GHOST = str(uuid.UUID(int=0xC01DC4A1))  # an id no object has
IDS: dict[str, list[str]] = {}  # field name → seeded ids; filled by the `seeded` fixture
SEEN: Counter[tuple[str, str]] = Counter()  # (operation, role) → examples sent
ANSWERED: Counter[tuple[str, int]] = Counter()  # (operation, status) → answers


@pytest.fixture(scope="module")
async def seeded(
    settings: Settings, engine: AsyncEngine, superuser_engine: AsyncEngine
) -> AsyncIterator[World]:
    await truncate_all(superuser_engine)
    app = create_app(settings, engine=engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     headers=bearer(ADMIN_KEY)) as admin:
            world = await build_world(admin, engine)
            hook = await admin.post("/api/v1/webhooks", json={
                "url": "http://127.0.0.1:9/hook", "site_id": world.own["site_id"]})
            assert hook.status_code == 201, hook.text
    IDS.update(seeded_ids(world))
    yield world
    IDS.clear()
    await truncate_all(superuser_engine)


@pytest.fixture(scope="module")
def fuzz_app(seeded: World, settings: Settings) -> Any:
    """The app under test, with its own engine made by its lifespan in schemathesis's loop."""
    return create_app(settings.model_copy(update={"rate_limit_per_s": 0}))


def seeded_ids(world: World) -> dict[str, list[str]]:
    """Pool → ids of the seeded world's objects, own site first, then the other site's, then one
    that does not exist (a fixed order: placeholder i means the same object in every run)."""
    ids: dict[str, list[str]] = {}
    for name in ("site_id", "lane_id", "product_id", "packaging_id", "shipment_id", "alert_id",
                 "webhook_id", "delivery_id", "event_id", "document_id"):
        ids[name] = [world.own[name], world.other[name], GHOST]
    ids["site_id"].insert(2, world.hub_site)
    ids["shipment_id"].insert(2, world.own["delivered_shipment_id"])
    ids["logger_id"] = [world.own["logger_id"], world.other["logger_id"], "SPARE-9", "NO-SUCH"]
    # Only the victim key: revoking the keys the roles use would end the run's coverage.
    ids["key_id"] = [world.own["key_id"], GHOST]
    ids["user_id"] = [world.own["user_id"], GHOST]
    ids["mail_id"] = [world.own["mail_id"], GHOST]
    ids["url"] = ["http://127.0.0.1:9/fuzz", "https://93.184.216.34/fuzz"]  # webhook targets
    return ids


# Id fields and the pool of seeded ids each draws from.
POOLS = {name: name for name in ("site_id", "lane_id", "product_id", "packaging_id",
                                 "shipment_id", "alert_id", "webhook_id", "delivery_id",
                                 "event_id", "logger_id", "key_id", "user_id", "mail_id",
                                 "document_id")}
POOLS.update(origin_site_id="site_id", destination_site_id="site_id",
             subscription_id="webhook_id", url="url")
SLOTS = 4  # placeholders per field; slot i stands for the pool's id i (modulo its size)
SEED = "SEED--"  # unreserved characters only: path parameters reach the hooks URL-encoded


def _placeholders(pool: str) -> list[str]:
    return [f"{SEED}{pool}--{i}" for i in range(SLOTS)]


def _with_seeds(field: dict[str, Any], pool: str) -> dict[str, Any]:
    """The field's schema, or one of the placeholders the map hooks turn into seeded ids."""
    seeds = _placeholders(pool)
    # Disjoint branches: a placeholder that the field's own schema also allows would otherwise
    # be folded into it by the generator's schema simplification, and never drawn on its own.
    return {"anyOf": [{"enum": seeds}, {"allOf": [field, {"not": {"enum": seeds}}]}]}


def seeded_schema(raw: dict[str, Any]) -> dict[str, Any]:
    """The app's schema with every id parameter and body field also drawing placeholders (the
    ids are known only once the world is built; placeholders keep generation as cheap as enums)."""
    for operations in raw["paths"].values():
        for operation in operations.values():
            for param in operation.get("parameters", []):
                if param["name"] in POOLS and "schema" in param:
                    param["schema"] = _with_seeds(param["schema"], POOLS[param["name"]])
    for model in raw.get("components", {}).get("schemas", {}).values():
        for name, field in model.get("properties", {}).items():
            if name in POOLS:
                model["properties"][name] = _with_seeds(field, POOLS[name])
            elif name == "logger_ids" and "items" in field:
                field["items"] = _with_seeds(field["items"], "logger_id")
    return raw


def _seeded(value: Any) -> Any:
    """Placeholders replaced by the seeded world's ids, anywhere in a generated value."""
    if isinstance(value, str) and value.startswith(SEED):
        pool, slot = value[len(SEED):].rsplit("--", 1)
        ids = IDS[pool]
        return ids[int(slot) % len(ids)]
    if isinstance(value, dict):
        return {k: _seeded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_seeded(v) for v in value]
    return value


schema = schemathesis.openapi.from_dict(seeded_schema(
    create_app(Settings(database_url="postgresql://unused/x", mqtt_url="mqtt://unused")).openapi()
)).exclude(path="/api/v1/stream")


@schema.hook
def map_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    return _seeded(path_parameters)


@schema.hook
def map_query(context: Any, query: dict[str, Any] | None) -> Any:
    return _seeded(query)


@schema.hook
def map_body(context: Any, body: Any) -> Any:
    return _seeded(body)


@schema.hook
def map_headers(context: Any, headers: dict[str, Any] | None) -> Any:
    """The example's role key is the credential: no generated Authorization header replaces it
    (the RBAC matrix and tests/api/test_hardening.py cover missing and malformed keys)."""
    if not headers:
        return headers
    return {k: v for k, v in headers.items() if k.lower() != "authorization"}


@schema.parametrize()
@schema.given(role=st.sampled_from(ROLES))
@settings(max_examples=MIN_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_every_role_gets_no_5xx_no_schema_violation_and_no_other_sites_data(
    case: Any, role: str, fuzz_app: Any, seeded: World
) -> None:
    SEEN[(case.operation.label, role)] += 1
    response = case.call_and_validate(
        app=fuzz_app, headers=bearer(seeded.keys[role]),
        checks=[not_a_server_error, response_schema_conformance],
    )
    ANSWERED[(case.operation.label, response.status_code)] += 1
    if role == "site":
        sent = " ".join((case.formatted_path, json.dumps(case.query, default=str),
                         json.dumps(case.body, default=str)))
        for marker in seeded.markers:
            if marker not in sent:
                assert marker.encode() not in response.content, (
                    f"{case.operation.label} leaks {marker!r}")


def test_every_operation_ran_as_every_role_and_reads_reached_real_objects() -> None:
    """Runs after the fuzzer (file order): each operation was called as each role, and each read
    of one object answered 200 for some seeded id (not only 404s on random ids)."""
    operations = {label for label, _ in SEEN}
    assert len(operations) > 40, sorted(operations)
    missing = [(op, role) for op in sorted(operations) for role in ROLES if not SEEN[(op, role)]]
    assert missing == []
    reads = {op for op in operations if op.startswith("GET ") and "{" in op}
    unreached = sorted(op for op in reads if not ANSWERED[(op, 200)])
    assert len(reads) > 15 and unreached == []
