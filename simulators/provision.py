"""Set up a scenario's reference data and shipment through the service layer (audited)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import (
    Lane,
    Logger,
    Packaging,
    Product,
    Reading,
    Shipment,
    ShipmentEvent,
    Site,
)
from app.core.security import Principal
from app.schemas.reference import LaneIn, LoggerIn, PackagingIn, ProductIn, SiteIn, WaypointIn
from app.schemas.shipments import ShipmentEventIn, ShipmentIn
from app.services import reference as ref
from app.services import shipments as svc
from simulators.plan import logger_id
from simulators.scenario import Scenario

SIMULATOR = Principal(actor="simulator", role="admin")


@dataclass(frozen=True, slots=True)
class Provisioned:
    shipment_id: uuid.UUID
    reference: str
    logger_ids: tuple[str, ...]


async def _site(session: AsyncSession, spec: dict[str, str]) -> uuid.UUID:
    found = await session.scalar(
        select(Site.id).where(Site.name == spec["name"], Site.country == spec["country"]).limit(1))
    if found is not None:
        return found
    return (await ref.create_site(session, SIMULATOR, SiteIn(**spec))).id


async def _product(session: AsyncSession, spec: dict[str, object]) -> uuid.UUID:
    data = ProductIn(**spec)
    found = await session.scalar(select(Product.id).where(*(
        getattr(Product, k) == v for k, v in data.model_dump().items())).limit(1))
    if found is not None:
        return found
    return (await ref.create_product(session, SIMULATOR, data)).id


async def _packaging(session: AsyncSession, spec: dict[str, object]) -> uuid.UUID:
    data = PackagingIn(**spec)
    found = await session.scalar(select(Packaging.id).where(
        Packaging.name == data.name, Packaging.qualified_hold_h == data.qualified_hold_h).limit(1))
    if found is not None:
        return found
    return (await ref.create_packaging(session, SIMULATOR, data)).id


async def _lane(session: AsyncSession, sc: Scenario, origin: uuid.UUID,
                destination: uuid.UUID) -> uuid.UUID:
    found = await session.scalar(select(Lane.id).where(
        Lane.name == sc.lane["name"], Lane.origin_site_id == origin,
        Lane.destination_site_id == destination).limit(1))
    if found is not None:
        return found
    data = LaneIn(
        name=sc.lane["name"], origin_site_id=origin, destination_site_id=destination,
        expected_transit_h=sc.lane["expected_transit_h"], max_transit_h=sc.lane["max_transit_h"],
        corridor_km=sc.lane["corridor_km"],
        waypoints=[WaypointIn(name=w.name, lat=w.lat, lon=w.lon, radius_km=w.radius_km,
                              dwell_allowance_h=w.dwell_allowance_h) for w in sc.waypoints],
    )
    return (await ref.create_lane(session, SIMULATOR, data)).id


@dataclass(frozen=True, slots=True)
class References:
    lane_id: uuid.UUID
    product_id: uuid.UUID
    packaging_id: uuid.UUID
    logger_ids: tuple[str, ...]


async def provision_references(session: AsyncSession, sc: Scenario, *,
                               tag: str) -> References:
    """Sites, product, packaging and lane (reused when identical) and the scenario's loggers
    (created unless they exist). Flushes only; the caller commits."""
    origin = await _site(session, sc.origin)
    destination = await _site(session, sc.destination)
    lane_id = await _lane(session, sc, origin, destination)
    ids = tuple(logger_id(spec, tag) for spec in sc.loggers)
    for spec, lid in zip(sc.loggers, ids, strict=True):
        if await session.get(Logger, lid) is None:
            await ref.create_logger(session, SIMULATOR,
                                    LoggerIn(id=lid, reporting_interval_s=spec.interval_s))
    return References(lane_id, await _product(session, sc.product),
                      await _packaging(session, sc.packaging), ids)


async def create_shipment(session: AsyncSession, sc: Scenario, refs: References, *,
                          reference: str, packed_at: datetime,
                          events: Sequence[tuple[str, datetime]] = ()) -> Provisioned:
    """The shipment, packed at `packed_at`, with `events` already behind it — all in the caller's
    transaction, so the evaluation never sees a half-told history (say, a shipment packed days
    ago that has not departed yet, or one in transit whose readings are not in)."""
    shipment = await svc.create_shipment(session, SIMULATOR, ShipmentIn(
        reference=reference, lane_id=refs.lane_id, product_id=refs.product_id,
        packaging_id=refs.packaging_id, logger_ids=list(refs.logger_ids), packed_at=packed_at,
        safety_margin_h=sc.safety_margin_h, max_gap_s=sc.max_gap_s,
    ))
    for event_type, at in events:
        await apply_event(session, shipment.id, event_type, at)
    return Provisioned(shipment.id, reference, refs.logger_ids)


async def provision(session: AsyncSession, sc: Scenario, *, tag: str, packed_at: datetime,
                    reference: str | None = None) -> Provisioned:
    """References and a packed shipment (its events follow as the timeline reaches them)."""
    refs = await provision_references(session, sc, tag=tag)
    return await create_shipment(session, sc, refs, reference=reference or default_reference(
        sc, tag), packed_at=packed_at)


def default_reference(sc: Scenario, tag: str) -> str:
    return f"SIM-{sc.name}-{tag}"


async def apply_event(session: AsyncSession, shipment_id: uuid.UUID, event_type: str,
                      at: datetime) -> None:
    # Simulated history is recorded after its readings (a back-fill, a skewed logger clock):
    # honestly a late entry wherever the event is dated before readings already stored.
    await svc.add_event(session, SIMULATOR, shipment_id, ShipmentEventIn(
        type=event_type, at=at, note="simulated",
        correction_reason="simulated timeline, recorded after its readings"))


async def applied_events(session: AsyncSession, shipment_id: uuid.UUID) -> int:
    return int(await session.scalar(select(func.count()).select_from(ShipmentEvent).where(
        ShipmentEvent.shipment_id == shipment_id)) or 0)


async def find_shipment(session: AsyncSession, reference: str) -> Shipment | None:
    return await session.scalar(select(Shipment).where(Shipment.reference == reference))


async def stored_readings(session: AsyncSession, logger_ids: tuple[str, ...]) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(Reading).where(Reading.logger_id.in_(logger_ids))) or 0)
