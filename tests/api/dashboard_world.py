"""Test data for the dashboard tests: a fleet on one lane, state rows and readings inserted directly."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import Alert, AlertEvent, Excursion, Reading, ShipmentState, utcnow
from tests import factories as f


async def fleet(
    client: httpx.AsyncClient, references: Sequence[str], *, hold_h: float = 96.0,
    product: dict[str, Any] | None = None, packed_at: datetime = f.T0, **lane_over: Any,
) -> dict[str, Any]:
    """One lane, product and packaging; a shipment (with its own logger) per reference."""
    origin = await f.site(client, "Leiden CTU", "NL")
    destination = await f.site(client, "Boston infusion centre", "US")
    lane_id = await f.lane(client, origin, destination, **lane_over)
    product_id = await f.refrigerated_product(client, **(product or {}))
    packaging_id = await f.packaging(client, hold_h)
    shipments = {}
    for i, ref in enumerate(references):
        logger_id = await f.logger(client, "L-" + re.sub(r"[^A-Za-z0-9._-]", "-", ref), 60)
        shipments[ref] = await f.post(client, "/shipments", {
            "reference": ref, "lane_id": lane_id, "product_id": product_id,
            "packaging_id": packaging_id, "logger_ids": [logger_id],
            "packed_at": (packed_at + timedelta(minutes=i)).isoformat(),
        })
    return {"origin": origin, "destination": destination, "lane_id": lane_id,
            "product_id": product_id, "packaging_id": packaging_id, "shipments": shipments}


async def set_state(db: AsyncSession, shipment_id: str, **values: Any) -> None:
    await db.execute(insert(ShipmentState).values(shipment_id=shipment_id, **values))
    await db.commit()


async def add_readings(
    db: AsyncSession, shipment_id: str, logger_id: str, points: Sequence[tuple[datetime, float]],
    *, positions: Sequence[tuple[float, float] | None] | None = None,
) -> None:
    rows = []
    for i, (ts, temp) in enumerate(points):
        pos = positions[i] if positions is not None else None
        rows.append({
            "logger_id": logger_id, "ts": ts, "shipment_id": shipment_id, "temp_c": temp,
            "lat": pos[0] if pos else None, "lon": pos[1] if pos else None,
            "battery_pct": 90.0, "seq": i, "received_at": ts + timedelta(seconds=5),
            "payload_sha256": bytes([i % 256]) * 32,
        })
    for start in range(0, len(rows), 5000):
        await db.execute(insert(Reading), rows[start:start + 5000])
    await db.commit()


def minutes(start: datetime, temps: Sequence[float], step_s: int = 60) -> list[tuple[datetime, float]]:
    return [(start + timedelta(seconds=i * step_s), t) for i, t in enumerate(temps)]


async def add_excursion_and_alert(
    db: AsyncSession, shipment_id: str, logger_id: str, start: datetime, end: datetime,
    peak: float, *, severity: str = "warning", kind: str = "temperature_high",
) -> str:
    """An excursion and its alert with an `opened` transition, as the engine would write them."""
    await db.execute(insert(Excursion).values(
        shipment_id=shipment_id, logger_id=logger_id, kind=kind, start=start, end=end,
        duration_s=(end - start).total_seconds(), peak_c=peak, retroactive=False,
    ))
    alert_id = (await db.execute(insert(Alert).values(
        shipment_id=shipment_id, kind=kind, severity=severity, state="open", opened_at=utcnow(),
        condition_since=start, retroactive=False, message=f"{kind} peak {peak}",
        last_evidence_at=end,
    ).returning(Alert.id))).scalar_one()
    await db.execute(insert(AlertEvent).values(
        alert_id=alert_id, type="opened", actor="system", data={"kind": kind, "peak_c": peak},
    ))
    await db.commit()
    return str(alert_id)
