"""What makes a fleet row readable: site names and countries, the lane's name, the stability
budget's total and where the shipment is on its lane.

Sites, lanes and their waypoints never change once created (there is no update route; a reroute
moves a shipment to another lane), so what the rows need of them is remembered per process, by
id: a page of rows costs no query once its sites and lanes have been seen. Measured with
benchmarks/api.py (10 000 shipments, alternating requests to main's and this code): two look-up
queries per page cost 9–14 % of the fleet list's time on a loaded machine.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import Lane, LaneWaypoint, Site
from app.dashboard.whereabouts import Stop, whereabouts

# Bounded: a process that has seen more forgets them all and asks again. Each request works on
# its own copy of what it needs, so another request's forgetting cannot pull it away mid-way.
_CAPACITY = 20_000
_sites: dict[uuid.UUID, tuple[str, str]] = {}
_lanes: dict[uuid.UUID, tuple[str, tuple[Stop, ...]]] = {}


async def _known(
    session: AsyncSession, site_ids: set[uuid.UUID], lane_ids: set[uuid.UUID]
) -> tuple[dict[uuid.UUID, tuple[str, str]], dict[uuid.UUID, tuple[str, tuple[Stop, ...]]]]:
    """These sites and lanes, from memory or the database (then remembered)."""
    if len(_sites) + len(site_ids) > _CAPACITY or len(_lanes) + len(lane_ids) > _CAPACITY:
        _sites.clear()
        _lanes.clear()
    sites = {i: _sites[i] for i in site_ids if i in _sites}
    lanes = {i: _lanes[i] for i in lane_ids if i in _lanes}
    if missing := site_ids - sites.keys():
        for site_id, name, country in (await session.execute(
                select(Site.id, Site.name, Site.country).where(Site.id.in_(missing)))).all():
            sites[site_id] = _sites[site_id] = (name, country)
    if missing := lane_ids - lanes.keys():
        names: dict[uuid.UUID, str] = {}
        stops: dict[uuid.UUID, list[Stop]] = defaultdict(list)
        for lane_id, lane_name, name, lat, lon, radius in (await session.execute(
            select(Lane.id, Lane.name, LaneWaypoint.name, LaneWaypoint.lat, LaneWaypoint.lon,
                   LaneWaypoint.radius_km)
            .outerjoin(LaneWaypoint, LaneWaypoint.lane_id == Lane.id)
            .where(Lane.id.in_(missing))
            .order_by(Lane.id, LaneWaypoint.position)
        )).all():
            names[lane_id] = lane_name
            if name is not None:
                stops[lane_id].append(Stop(name, lat, lon, radius))
        for lane_id, lane_name in names.items():
            lanes[lane_id] = _lanes[lane_id] = (lane_name, tuple(stops[lane_id]))
    return sites, lanes


async def add_context(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Complete summary dicts (`app.services.shipments.summary_dict`) in place."""
    sites, lanes = await _known(
        session, {r["origin_site_id"] for r in rows} | {r["destination_site_id"] for r in rows},
        {r["lane_id"] for r in rows})
    for row in rows:
        origin, origin_country = sites[row["origin_site_id"]]
        destination, destination_country = sites[row["destination_site_id"]]
        lane_name, stops = lanes[row["lane_id"]]
        last = row["last_reading"]
        position = (last["lat"], last["lon"]) if last and last["lat"] is not None \
            and last["lon"] is not None else None
        row.update(
            origin_site_name=origin, origin_country=origin_country,
            destination_site_name=destination, destination_country=destination_country,
            lane_name=lane_name,
            whereabouts=whereabouts(row["status"], position, stops,
                                    origin=origin, destination=destination),
        )
