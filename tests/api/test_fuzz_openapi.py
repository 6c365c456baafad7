"""Schemathesis over /openapi.json, in-process, with a valid admin key: no 5xx, no schema violations.

Examples are bounded (and derandomised, so a run is reproducible) to keep this well under a minute.
The app runs in schemathesis's own event loop thread with its own engine (lifespan); the data it
finds was seeded through the API beforehand, so list answers are validated with real items in them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from sqlalchemy.ext.asyncio import AsyncEngine

from app.api.main import create_app
from app.core.settings import Settings
from tests import factories as f
from tests.conftest import ADMIN_KEY, truncate_all

MAX_EXAMPLES = 12


@pytest.fixture(scope="module")
async def seeded(
    settings: Settings, engine: AsyncEngine, superuser_engine: AsyncEngine
) -> AsyncIterator[None]:
    """A small world (sites, lane, shipment with events, keys, a webhook) for the fuzzer to read."""
    await truncate_all(superuser_engine)
    app = create_app(settings, engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as admin:
        shipment = await f.shipment_setup(admin, departed_at=(f.T0 + timedelta(hours=1)).isoformat())
        await f.post(admin, f"/shipments/{shipment['id']}/events",
                     {"type": "customs_hold", "at": (f.T0 + timedelta(hours=5)).isoformat()})
        await f.post(admin, "/api-keys", {"role": "qp", "name": "fuzz qp"})
        webhook = await admin.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"})
        assert webhook.status_code in (201, 404), webhook.text  # 404 until webhooks exist
    yield
    await truncate_all(superuser_engine)


@pytest.fixture(scope="module")
def fuzz_app(seeded: None, settings: Settings) -> Any:
    """The app under test, with its own engine made by its lifespan in schemathesis's loop."""
    return create_app(settings.model_copy(update={"rate_limit_per_s": 0}))


# The schema is the app's own; which database it talks to does not change it. The live event
# stream never ends (each example would wait out a timeout): its access rules are covered by
# tests/api/test_rbac_matrix.py and its behaviour by the dashboard's tests.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="postgresql://unused/x", mqtt_url="mqtt://unused")).openapi()
).exclude(path="/api/v1/stream")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_answers_every_generated_request_without_5xx_or_schema_violation(
    case: Any, fuzz_app: Any
) -> None:
    case.call_and_validate(
        app=fuzz_app,
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
