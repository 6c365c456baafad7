"""Test data built through the API (so every test exercises the real validation and audit path)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/api/v1{path}", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def site(client: httpx.AsyncClient, name: str = "Leiden CTU", country: str = "NL") -> str:
    return (await post(client, "/sites", {"name": name, "country": country}))["id"]


async def refrigerated_product(client: httpx.AsyncClient, **over: Any) -> str:
    body = {"name": "CAR-T 2-8", "temp_min_c": 2.0, "temp_max_c": 8.0, "alarm_delay_s": 0,
            "stability_budget_s": 3600, **over}
    return (await post(client, "/products", body))["id"]


async def packaging(client: httpx.AsyncClient, hold_h: float = 96.0) -> str:
    return (await post(client, "/packaging", {"name": "Passive 2-8 96h", "qualified_hold_h": hold_h}))[
        "id"
    ]


async def lane(client: httpx.AsyncClient, origin: str, destination: str, **over: Any) -> str:
    body = {
        "name": "AMS-BOS", "origin_site_id": origin, "destination_site_id": destination,
        "expected_transit_h": 30, "max_transit_h": 48, "corridor_km": 100,
        "waypoints": [
            {"name": "AMS", "lat": 52.31, "lon": 4.76, "radius_km": 5, "dwell_allowance_h": 6},
            {"name": "BOS customs", "lat": 42.36, "lon": -71.01, "radius_km": 5,
             "dwell_allowance_h": 8},
        ],
        **over,
    }
    return (await post(client, "/lanes", body))["id"]


async def logger(client: httpx.AsyncClient, logger_id: str, interval_s: int = 300) -> str:
    return (await post(client, "/loggers", {"id": logger_id, "reporting_interval_s": interval_s}))[
        "id"
    ]


async def shipment_setup(
    client: httpx.AsyncClient, *, logger_ids: tuple[str, ...] = ("LOG-1",), reference: str = "SHP-1",
    product: dict[str, Any] | None = None, hold_h: float = 96.0, interval_s: int = 300,
    **over: Any,
) -> dict[str, Any]:
    """Sites, product, packaging, lane, loggers and a shipment packed at T0; returns the shipment."""
    origin = await site(client, "Leiden CTU", "NL")
    destination = await site(client, "Boston infusion centre", "US")
    body = {
        "reference": reference,
        "lane_id": await lane(client, origin, destination),
        "product_id": await refrigerated_product(client, **(product or {})),
        "packaging_id": await packaging(client, hold_h),
        "logger_ids": [await logger(client, i, interval_s) for i in logger_ids],
        "packed_at": T0.isoformat(),
        **over,
    }
    return await post(client, "/shipments", body)
