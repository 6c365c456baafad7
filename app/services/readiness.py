"""Is a shipment ready to depart: the lane's required documents present and valid until the
expected arrival, the packaging's requalification too. A pure judgement and its loader."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import Lane, Packaging, Shipment, ShipmentDocument, ShipmentState

PACKAGING_REQUALIFICATION = "packaging_requalification"


@dataclass(frozen=True, slots=True)
class Doc:
    id: uuid.UUID
    kind: str
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Lapse:
    kind: str
    expires_at: datetime
    document_id: uuid.UUID | None = None
    packaging_id: uuid.UUID | None = None
    requalified_until: date | None = None


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    missing: tuple[str, ...]
    expired: tuple[Lapse, ...]
    required_documents: tuple[str, ...]
    expected_arrival: datetime

    def summary(self) -> str:
        parts = [f"missing: {', '.join(self.missing)}"] if self.missing else []
        if self.expired:
            parts.append("expired before the expected arrival: " + ", ".join(
                f"{e.kind} ({e.expires_at.isoformat()})" for e in self.expired))
        return "; ".join(parts)


def requalification_lapses(until: date) -> datetime:
    """A requalification holds through its last day (UTC): it lapses at the next midnight."""
    return datetime.combine(until + timedelta(days=1), time(), tzinfo=UTC)


def judge(
    required: Sequence[str], documents: Sequence[Doc], *, expected_arrival: datetime,
    packaging_id: uuid.UUID, requalified_until: date | None,
) -> Readiness:
    """Each required kind needs a document valid at the expected arrival (no expiry, or expiring
    at or after it); of several, the longest-lived counts. A kind whose documents all lapse
    earlier is expired (the latest of them named), one without any is missing. The packaging's
    requalification lapsing before the arrival is expired too."""
    if expected_arrival.tzinfo is None:
        raise ValueError("expected_arrival must be timezone-aware")
    missing: list[str] = []
    expired: list[Lapse] = []
    for kind in required:
        docs = [d for d in documents if d.kind == kind]
        ends = [(d.expires_at, str(d.id), d) for d in docs if d.expires_at is not None]
        if not docs:
            missing.append(kind)
        elif len(ends) == len(docs):  # every one of them expires: the last one decides
            end, _, last = max(ends, key=lambda e: e[:2])
            if end < expected_arrival:
                expired.append(Lapse(kind, end, document_id=last.id))
    if requalified_until is not None:
        lapses = requalification_lapses(requalified_until)
        if lapses < expected_arrival:
            expired.append(Lapse(PACKAGING_REQUALIFICATION, lapses, packaging_id=packaging_id,
                                 requalified_until=requalified_until))
    return Readiness(not missing and not expired, tuple(missing), tuple(expired),
                     tuple(required), expected_arrival)


async def readiness(
    session: AsyncSession, shipment: Shipment, *, now: datetime,
    departing_at: datetime | None = None,
) -> Readiness:
    """The shipment's readiness against the lane it is on. Expected arrival: for a departure
    being recorded, its time + the lane's expected transit; otherwise the engine's expected
    arrival, or (not yet judged) the departure — or now, before one — + the expected transit."""
    lane = await session.get(Lane, shipment.lane_id)
    packaging = await session.get(Packaging, shipment.packaging_id)
    assert lane is not None and packaging is not None  # foreign keys
    transit = timedelta(hours=lane.expected_transit_h)
    if departing_at is not None:
        arrival = departing_at + transit
    else:
        state_arrival = await session.scalar(
            select(ShipmentState.expected_arrival)
            .where(ShipmentState.shipment_id == shipment.id))
        arrival = state_arrival or (shipment.departed_at or now) + transit
    docs = [Doc(d.id, d.kind, d.expires_at) for d in (await session.execute(
        select(ShipmentDocument.id, ShipmentDocument.kind, ShipmentDocument.expires_at)
        .where(ShipmentDocument.shipment_id == shipment.id))).all()]
    return judge(lane.required_documents, docs, expected_arrival=arrival,
                 packaging_id=packaging.id, requalified_until=packaging.requalified_until)
