"""A shipment's track as a GeoJSON FeatureCollection, with its lane's waypoints and corridor."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from app.api.deps import CurrentPrincipal, SessionDep
from app.api.routes.readings import json_response
from app.core.models import Reading
from app.dashboard import track
from app.services import reference as ref
from app.services import shipments as svc

router = APIRouter(tags=["shipments"])
GEOJSON = "application/geo+json"


@router.get(
    "/shipments/{shipment_id}/track", response_model=None,
    responses={200: {"description": "RFC 7946 FeatureCollection: features with `kind` "
                                    "corridor, lane, waypoint, track, position",
                     "content": {GEOJSON: {}}}},
)
async def shipment_track(
    shipment_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal,
    logger_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    shipment = await svc.get_visible_shipment(session, principal, shipment_id)
    lane = await ref.get_lane(session, shipment.lane_id)
    stmt = (
        select(Reading.ts, Reading.lat, Reading.lon, Reading.temp_c, Reading.logger_id)
        .where(Reading.shipment_id == shipment.id, Reading.lat.is_not(None),
               Reading.lon.is_not(None))
        .order_by(Reading.ts, Reading.logger_id)
    )
    if logger_id is not None:
        stmt = stmt.where(Reading.logger_id == logger_id)
    positions = [
        track.Position(ts=r.ts.isoformat().replace("+00:00", "Z"), lat=r.lat, lon=r.lon,
                       temp_c=r.temp_c, logger_id=r.logger_id)
        for r in (await session.execute(stmt)).all()
    ]
    waypoints = [
        track.WaypointSpec(w.name, w.lat, w.lon, w.radius_km, w.dwell_allowance_h)
        for w in lane.waypoints
    ]
    body: dict[str, Any] = track.feature_collection(
        positions, waypoints, lane.corridor_km, shipment_id=str(shipment.id),
        reference=shipment.reference, lane_id=str(lane.id), lane=lane.name,
    )
    response = json_response(body)
    response.headers["content-type"] = GEOJSON
    return response
