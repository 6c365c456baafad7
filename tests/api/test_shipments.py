"""Shipments API: registration, logger assignment, events state machine, site scoping."""

from __future__ import annotations

from datetime import timedelta

import httpx

from tests import factories as f


async def test_create_shipment_and_read_summary(client: httpx.AsyncClient) -> None:
    shipment = await f.shipment_setup(client, logger_ids=("A-1", "A-2"))
    assert shipment["status"] == "packed"
    assert shipment["logger_ids"] == ["A-1", "A-2"]
    assert shipment["hold_deadline"].startswith("2026-11-24T08:00:00")
    listed = (await client.get("/api/v1/shipments")).json()["items"]
    assert [s["reference"] for s in listed] == ["SHP-1"]


async def test_logger_cannot_serve_two_active_shipments(client: httpx.AsyncClient) -> None:
    first = await f.shipment_setup(client)
    again = await client.post("/api/v1/shipments", json={
        "reference": "SHP-2", "lane_id": first["lane_id"], "product_id": first["product_id"],
        "packaging_id": first["packaging_id"], "logger_ids": ["LOG-1"],
        "packed_at": f.T0.isoformat(),
    })
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "logger_ids"


async def test_events_follow_the_state_machine(client: httpx.AsyncClient) -> None:
    shipment = await f.shipment_setup(client)
    url = f"/api/v1/shipments/{shipment['id']}/events"
    at = f.T0 + timedelta(hours=1)
    early = await client.post(url, json={"type": "delivered", "at": at.isoformat()})
    assert early.status_code == 409
    for i, kind in enumerate(["departed", "customs_hold", "customs_released", "delivered",
                              "received"]):
        ok = await client.post(url, json={"type": kind, "at": (at + timedelta(hours=i)).isoformat()})
        assert ok.status_code == 201, ok.text
    detail = (await client.get(f"/api/v1/shipments/{shipment['id']}")).json()
    assert detail["status"] == "received"
    assert [e["type"] for e in detail["events"]][0] == "departed"
    naive = await client.post(url, json={"type": "departed", "at": "2026-11-20T10:00:00"})
    assert naive.status_code == 422


async def test_site_key_sees_only_its_shipments(client: httpx.AsyncClient) -> None:
    shipment = await f.shipment_setup(client)
    other = await f.site(client, "Elsewhere", "DE")
    key = (await f.post(client, "/api-keys", {"role": "site", "site_id": other}))["key"]
    headers = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/v1/shipments", headers=headers)).json()["items"] == []
    hidden = await client.get(f"/api/v1/shipments/{shipment['id']}", headers=headers)
    assert hidden.status_code == 404
    own_key = (await f.post(client, "/api-keys", {"role": "site",
                                                   "site_id": shipment["destination_site_id"]}))
    mine = await client.get(f"/api/v1/shipments/{shipment['id']}",
                            headers={"Authorization": f"Bearer {own_key['key']}"})
    assert mine.status_code == 200
