"""Reference-data API against the real database: round trips, validation, auth, pagination."""

from __future__ import annotations

import httpx
import pytest

from tests import factories as f


async def test_site_round_trip(client: httpx.AsyncClient) -> None:
    site_id = await f.site(client)
    got = await client.get(f"/api/v1/sites/{site_id}")
    assert got.status_code == 200
    assert got.json()["country"] == "NL"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/products", {"name": "x", "temp_min_c": 9, "temp_max_c": 8, "stability_budget_s": 1},
         "temp_min_c"),
        ("/products", {"name": "x", "temp_min_c": 2, "temp_max_c": 8, "stability_budget_s": 1,
                       "critical_max_c": 5}, "critical_max_c"),
        ("/products", {"name": "x", "temp_min_c": -300, "temp_max_c": 8,
                       "stability_budget_s": 1}, "temp_min_c"),
        ("/packaging", {"name": "x", "qualified_hold_h": 0}, "qualified_hold_h"),
        ("/loggers", {"id": "bad id!"}, "id"),
        ("/sites", {"name": "x", "country": "Netherlands"}, "country"),
        ("/sites", {"name": "x", "country": "NL", "colour": "red"}, "colour"),
    ],
)
async def test_invalid_bodies_name_the_field(
    client: httpx.AsyncClient, path: str, body: dict[str, object], field: str
) -> None:
    response = await client.post(f"/api/v1{path}", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert field in [e["field"] for e in problem["errors"]]


async def test_lane_with_waypoint_latitude_91_is_rejected(client: httpx.AsyncClient) -> None:
    a, b = await f.site(client), await f.site(client, "B", "US")
    response = await client.post("/api/v1/lanes", json={
        "name": "L", "origin_site_id": a, "destination_site_id": b, "expected_transit_h": 10,
        "max_transit_h": 20, "corridor_km": 50,
        "waypoints": [{"name": "W", "lat": 91, "lon": 0, "radius_km": 1, "dwell_allowance_h": 1}],
    })
    assert response.status_code == 422
    assert "waypoints.0.lat" in [e["field"] for e in response.json()["errors"]]


async def test_lane_round_trip_keeps_waypoint_order(client: httpx.AsyncClient) -> None:
    a, b = await f.site(client), await f.site(client, "B", "US")
    lane_id = await f.lane(client, a, b)
    lane = (await client.get(f"/api/v1/lanes/{lane_id}")).json()
    assert [w["name"] for w in lane["waypoints"]] == ["AMS", "BOS customs"]
    assert [w["position"] for w in lane["waypoints"]] == [0, 1]


async def test_shipment_on_unknown_lane_names_lane_id(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/shipments", json={
        "reference": "S", "lane_id": "00000000-0000-0000-0000-000000000001",
        "product_id": await f.refrigerated_product(client), "packaging_id": await f.packaging(client),
        "logger_ids": [await f.logger(client, "L1")], "packed_at": f.T0.isoformat(),
    })
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "lane_id"


async def test_pagination_walks_every_item_once(client: httpx.AsyncClient) -> None:
    for i in range(7):
        await f.logger(client, f"PG-{i}")
    seen: list[str] = []
    url = "/api/v1/loggers?limit=3"
    while True:
        page = (await client.get(url)).json()
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        url = f"/api/v1/loggers?limit=3&cursor={page['next_cursor']}"
    assert sorted(seen) == [f"PG-{i}" for i in range(7)]
    bad = await client.get("/api/v1/loggers?cursor=garbage")
    assert bad.status_code == 422


async def test_no_key_is_401_wrong_role_is_403(client: httpx.AsyncClient) -> None:
    anonymous = await client.get("/api/v1/sites", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    wrong = await client.get("/api/v1/sites", headers={"Authorization": "Bearer cc_nothere_x"})
    assert wrong.status_code == 401
    created = await f.post(client, "/api-keys", {"role": "qp"})
    qp = {"Authorization": f"Bearer {created['key']}"}
    assert (await client.get("/api/v1/sites", headers=qp)).status_code == 200
    forbidden = await client.post("/api/v1/sites", json={"name": "x", "country": "NL"}, headers=qp)
    assert forbidden.status_code == 403
    revoked = await client.delete(f"/api/v1/api-keys/{created['id']}")
    assert revoked.status_code == 200
    assert (await client.get("/api/v1/sites", headers=qp)).status_code == 401


async def test_health_endpoints_need_no_key(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz", headers={"Authorization": ""})).status_code == 200
    ready = await client.get("/readyz", headers={"Authorization": ""})
    assert ready.status_code == 200, ready.text
    metrics = await client.get("/metrics", headers={"Authorization": ""})
    assert "coldchain_http_requests_total" in metrics.text
