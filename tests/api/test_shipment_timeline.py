"""Custody events in time: back-dated, future, out of order, late entries and corrections with a reason.

The record of a shipment is a view: its loggers' readings inside their assignment windows. No
event or correction deletes a reading; every reading stays stored, and a correction brings back
into the record what an early receipt had left out.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import AuditRecord, Reading, utcnow
from tests import factories as f
from tests.api import dashboard_world as w
from tests.api.keys import bearer, make_key
from tests.api.people import qp_person, signed

T0 = f.T0
API = "/api/v1"


def h(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


class Journey:
    """A shipment departed at T0 + 1 h, a logger reporting every 10 min for 6 h, and keys."""

    def __init__(self, client: httpx.AsyncClient, shipment: dict[str, Any],
                 keys: dict[str, dict[str, str]]) -> None:
        self.client, self.shipment, self.keys = client, shipment, keys
        self.id = shipment["id"]

    async def event(self, role: str, type_: str, at: str, **extra: Any) -> httpx.Response:
        return await self.client.post(f"{API}/shipments/{self.id}/events",
                                      json={"type": type_, "at": at, **extra},
                                      headers=self.keys[role])

    async def correct(self, role: str, event_id: str, **body: Any) -> httpx.Response:
        return await self.client.post(
            f"{API}/shipments/{self.id}/events/{event_id}/corrections", json=body,
            headers=self.keys[role])

    async def detail(self) -> dict[str, Any]:
        return dict((await self.client.get(f"{API}/shipments/{self.id}")).json())


@pytest.fixture
async def journey(client: httpx.AsyncClient, db: AsyncSession) -> Journey:
    shipment = await f.shipment_setup(client, departed_at=h(1))
    points = [(T0 + timedelta(minutes=10 * i), 5.0 if i < 18 else 9.5) for i in range(37)]
    await w.add_readings(db, shipment["id"], "LOG-1", points)  # warm from 3 h on, up to 6 h
    keys = {"admin": {}, "coordinator": bearer(await make_key(client, "coordinator")),
            "site": bearer(await make_key(client, "site", shipment["destination_site_id"]))}
    return Journey(client, shipment, keys)


async def _record(db: AsyncSession, shipment_id: str) -> tuple[int, int]:
    """(readings in the shipment's record, readings of its logger stored at all)."""
    db.expire_all()
    linked = await db.scalar(select(func.count()).select_from(Reading).where(
        Reading.shipment_id == uuid.UUID(shipment_id)))
    stored = await db.scalar(select(func.count()).select_from(Reading).where(
        Reading.logger_id == "LOG-1"))
    return int(linked or 0), int(stored or 0)


async def _view_matches_the_windows(db: AsyncSession) -> None:
    """Every reading is linked exactly as its logger's assignment windows say (the view)."""
    wrong = await db.scalar(text(
        "SELECT count(*) FROM readings r WHERE r.shipment_id IS DISTINCT FROM ("
        " SELECT sl.shipment_id FROM shipment_loggers sl WHERE sl.logger_id = r.logger_id"
        " AND sl.assigned_from <= r.ts AND (sl.assigned_until IS NULL OR r.ts < sl.assigned_until)"
        " ORDER BY sl.assigned_from DESC LIMIT 1)"))
    assert wrong == 0


async def test_the_destination_cannot_erase_the_record_by_receiving_early(
    journey: Journey, db: AsyncSession
) -> None:
    """The reported attack: delivered and received a minute after departure."""
    delivered = await journey.event("site", "delivered", h(1.02))
    assert delivered.status_code == 409
    problem = delivered.json()
    assert problem["errors"][0]["field"] == "at"
    assert "readings up to 2026-11-20T14:00:00Z are already stored" in problem["detail"]
    assert "late entry" in problem["detail"]
    forged = await journey.event("site", "delivered", h(1.02), correction_reason="trust me")
    assert forged.status_code == 403
    assert (await journey.event("admin", "delivered", h(1.02),
                                correction_reason="bootstrap")).status_code == 403
    assert (await journey.event("coordinator", "delivered", h(1.02))).status_code == 409
    assert await _record(db, journey.id) == (37, 37)
    detail = await journey.detail()
    assert (detail["status"], detail["delivered_at"]) == ("in_transit", None)
    # At or after the last reading it is an ordinary event; a receipt strictly after it.
    assert (await journey.event("site", "delivered", h(6))).status_code == 201
    assert (await journey.event("site", "received", h(6))).status_code == 409
    received = await journey.event("site", "received", h(6.01))
    assert received.status_code == 201 and received.json()["late_entry"] is False
    assert await _record(db, journey.id) == (37, 37)


async def test_future_and_out_of_order_events_are_refused(journey: Journey) -> None:
    now = utcnow()
    ahead = await journey.event("site", "customs_hold", (now + timedelta(minutes=6)).isoformat())
    assert ahead.status_code == 422 and "future" in ahead.json()["detail"]
    assert ahead.json()["errors"][0]["field"] == "at"
    hold = await journey.event("coordinator", "customs_hold", (now + timedelta(minutes=4)).isoformat())
    assert hold.status_code == 201, hold.text
    back = await journey.event("coordinator", "customs_released", h(7),
                               correction_reason="released before the hold?")
    assert back.status_code == 422
    assert "previous event of the chain (customs_hold at" in back.json()["detail"]
    await f.logger(journey.client, "SPARE")
    created = await journey.client.post(f"{API}/shipments", json={
        "reference": "SHP-EARLY", "lane_id": journey.shipment["lane_id"],
        "product_id": journey.shipment["product_id"],
        "packaging_id": journey.shipment["packaging_id"], "logger_ids": ["SPARE"],
        "packed_at": h(0), "departed_at": h(5)})
    sid = created.json()["id"]
    before_departure = await journey.client.post(
        f"{API}/shipments/{sid}/events", json={"type": "delivered", "at": h(4)})
    assert before_departure.status_code == 422
    assert "before departure (2026-11-20T13:00:00Z)" in before_departure.json()["detail"]
    before_packing = await journey.client.post(
        f"{API}/shipments/{sid}/events", json={"type": "delivered", "at": h(-1)})
    assert before_packing.status_code == 422


async def test_a_coordinator_records_a_late_entry_with_a_reason(
    journey: Journey, db: AsyncSession
) -> None:
    late = await journey.event("coordinator", "delivered", h(2), note="POD on paper",
                               correction_reason="courier's proof of delivery entered late")
    assert late.status_code == 201, late.text
    body = late.json()
    assert body["late_entry"] is True
    assert body["correction_reason"] == "courier's proof of delivery entered late"
    trail = (await db.scalars(select(AuditRecord).where(
        AuditRecord.entity_id == journey.id, AuditRecord.action == "event.delivered"))).all()
    assert [(a.reason, a.before["status"], a.after["status"]) for a in trail] == [
        ("courier's proof of delivery entered late", "in_transit", "delivered")]


async def test_corrections_move_the_record_and_never_delete_a_reading(
    journey: Journey, db: AsyncSession
) -> None:
    """A receipt entered too early leaves later readings out of the record; a coordinator's
    correction brings them back, and voiding the receipt and delivery reopens the shipment."""
    delivered = (await journey.event("coordinator", "delivered", h(1.5), correction_reason="x")
                 ).json()
    received = (await journey.event("coordinator", "received", h(2),
                                    correction_reason="receipt form dated 10:00")).json()
    assert await _record(db, journey.id) == (12, 37)  # 08:00–09:50 in the record; all stored
    await _view_matches_the_windows(db)

    missing = await journey.correct("coordinator", received["id"], at=h(6.5))
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "reason"
    for role in ("site", "admin"):
        refused = await journey.correct(role, received["id"], at=h(6.5), reason="x")
        assert refused.status_code == 403, role
    moved = await journey.correct("coordinator", received["id"], at=h(6.5),
                                  reason="the form was dated in the wrong time zone")
    assert moved.status_code == 201, moved.text
    event = moved.json()
    assert event["at"] == "2026-11-20T14:30:00Z" and event["original_at"] == "2026-11-20T10:00:00Z"
    assert event["correction_reason"] == "the form was dated in the wrong time zone"
    assert event["corrected_by"].startswith("key:") and event["voided_at"] is None
    assert await _record(db, journey.id) == (37, 37)
    await _view_matches_the_windows(db)
    assert (await journey.detail())["received_at"] == "2026-11-20T14:30:00Z"

    # Out of the chain's order, or into the future: refused like any event.
    before_delivery = await journey.correct("coordinator", received["id"], at=h(1),
                                            reason="typo")
    assert before_delivery.status_code == 422
    future = (utcnow() + timedelta(hours=1)).isoformat()
    assert (await journey.correct("coordinator", received["id"], at=future,
                                  reason="typo")).status_code == 422
    # Voiding: the latest first; the receipt and delivery never happened.
    middle = await journey.correct("coordinator", delivered["id"], void=True, reason="x")
    assert middle.status_code == 409 and "void the later events first" in middle.json()["detail"]
    for event_id in (received["id"], delivered["id"]):
        voided = await journey.correct("coordinator", event_id, void=True,
                                       reason="posted by mistake: the box is still in transit")
        assert voided.status_code == 201 and voided.json()["voided_at"] is not None
    detail = await journey.detail()
    assert (detail["status"], detail["delivered_at"], detail["received_at"]) == (
        "in_transit", None, None)
    assert [(e["type"], e["voided_at"] is not None) for e in detail["events"]] == [
        ("delivered", True), ("received", True)]
    again = await journey.correct("coordinator", received["id"], at=h(7), reason="x")
    assert again.status_code == 409
    assert await _record(db, journey.id) == (37, 37)
    await _view_matches_the_windows(db)
    # New readings of the reopened shipment join its record as ingest stores them.
    assigned = await db.scalar(text(
        "SELECT count(*) FROM shipment_loggers WHERE assigned_until IS NULL"))
    assert assigned == 1
    # Every correction is in the audit trail with before and after.
    trail = (await db.scalars(select(AuditRecord).where(
        AuditRecord.entity_id == journey.id, AuditRecord.action.like("event.%.%"))
        .order_by(AuditRecord.id))).all()
    assert [a.action for a in trail] == [
        "event.received.corrected", "event.received.voided", "event.delivered.voided"]
    first = trail[0]
    assert first.before["event"]["at"].startswith("2026-11-20T10:00:00")
    assert first.after["event"]["at"].startswith("2026-11-20T14:30:00")
    assert first.before["shipment"]["received_at"].startswith("2026-11-20T10:00:00")
    assert first.reason == "the form was dated in the wrong time zone"


async def test_a_correction_cannot_reach_into_the_loggers_next_shipment(
    journey: Journey, db: AsyncSession
) -> None:
    await journey.event("coordinator", "delivered", h(1.5), correction_reason="x")
    received = (await journey.event("coordinator", "received", h(2), correction_reason="x")).json()
    nxt = await f.post(journey.client, "/shipments", {
        "reference": "SHP-NEXT", "lane_id": journey.shipment["lane_id"],
        "product_id": journey.shipment["product_id"],
        "packaging_id": journey.shipment["packaging_id"], "logger_ids": ["LOG-1"],
        "packed_at": h(3)})
    assert await _record(db, nxt["id"]) == (19, 37)  # 11:00 on: the logger's next life
    clash = await journey.correct("coordinator", received["id"], at=h(4), reason="x")
    assert clash.status_code == 409 and "SHP-NEXT" in clash.json()["detail"]
    voided = await journey.correct("coordinator", received["id"], void=True, reason="x")
    assert voided.status_code == 409
    inside = await journey.correct("coordinator", received["id"], at=h(2.9), reason="x")
    assert inside.status_code == 201
    assert await _record(db, journey.id) == (18, 37)
    assert await _record(db, nxt["id"]) == (19, 37)
    await _view_matches_the_windows(db)


async def test_no_correction_after_the_release_decision(
    journey: Journey, db: AsyncSession
) -> None:
    await journey.event("coordinator", "delivered", h(6))
    received = (await journey.event("coordinator", "received", h(6.1))).json()
    async with qp_person(journey.client) as qp:
        released = await qp.post(f"{API}/shipments/{journey.id}/release",
                                 json=signed("rejected", "excursion"))
    assert released.status_code == 200
    closed = await journey.correct("coordinator", received["id"], at=h(6.2), reason="x")
    assert closed.status_code == 409 and "closed" in closed.json()["detail"]


async def test_an_unknown_or_foreign_event_is_not_found(
    journey: Journey, client: httpx.AsyncClient
) -> None:
    other = await f.shipment_setup(client, reference="SHP-2", logger_ids=("LOG-2",),
                                   departed_at=h(1))
    their = await f.post(client, f"/shipments/{other['id']}/events",
                         {"type": "customs_hold", "at": h(2)})
    for event_id in (their["id"], str(uuid.uuid4())):
        answer = await journey.correct("coordinator", event_id, at=h(3), reason="x")
        assert answer.status_code == 404
    both = await journey.correct("coordinator", their["id"], at=h(3), void=True, reason="x")
    assert both.status_code == 422
    neither = await journey.correct("coordinator", their["id"], reason="x")
    assert neither.status_code == 422

