"""A shipment's track as GeoJSON (RFC 7946): positions, the lane's waypoints, path and corridor."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

KM_PER_DEG_LAT = 110.574
KM_PER_DEG_LON_EQUATOR = 111.320
_ARC_STEPS = 12


@dataclass(frozen=True, slots=True)
class Position:
    ts: str
    lat: float
    lon: float
    temp_c: float | None = None
    logger_id: str | None = None


@dataclass(frozen=True, slots=True)
class WaypointSpec:
    name: str
    lat: float
    lon: float
    radius_km: float
    dwell_allowance_h: float


def _feature(geometry: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def _dedupe(points: Sequence[Position]) -> list[Position]:
    out: list[Position] = []
    for p in points:
        if not out or (out[-1].lat, out[-1].lon) != (p.lat, p.lon):
            out.append(p)
    return out


def capsule(a: tuple[float, float], b: tuple[float, float], radius_km: float) -> list[list[float]]:
    """A closed ring ([lon, lat] pairs, counter-clockwise) of all points within radius of a→b.

    Built in a local equirectangular plane at the segment's mean latitude: exact enough for the
    corridor widths of a lane (tens to hundreds of km) and drawn the same way by the page.
    """
    lat0 = math.radians((a[0] + b[0]) / 2)
    kx = KM_PER_DEG_LON_EQUATOR * max(math.cos(lat0), 1e-6)
    ax, ay = a[1] * kx, a[0] * KM_PER_DEG_LAT
    bx, by = b[1] * kx, b[0] * KM_PER_DEG_LAT
    heading = math.atan2(by - ay, bx - ax) if (ax, ay) != (bx, by) else 0.0
    ring: list[list[float]] = []
    # Half circle around b (from the right side to the left), then around a back to the start.
    for cx, cy, base in ((bx, by, heading - math.pi / 2), (ax, ay, heading + math.pi / 2)):
        for i in range(_ARC_STEPS + 1):
            ang = base + math.pi * i / _ARC_STEPS
            x, y = cx + radius_km * math.cos(ang), cy + radius_km * math.sin(ang)
            ring.append([round(x / kx, 6), round(y / KM_PER_DEG_LAT, 6)])
    ring.append(ring[0])
    return ring


def corridor(path: Sequence[tuple[float, float]], radius_km: float) -> dict[str, Any] | None:
    """The corridor as a MultiPolygon of one capsule per leg (their union is the corridor)."""
    if not path:
        return None
    legs = list(zip(path, path[1:], strict=False)) or [(path[0], path[0])]
    return {"type": "MultiPolygon", "coordinates": [[capsule(a, b, radius_km)] for a, b in legs]}


def feature_collection(
    positions: Sequence[Position], waypoints: Sequence[WaypointSpec], corridor_km: float,
    **meta: Any,
) -> dict[str, Any]:
    """Track (LineString, or Point with one position), latest position, lane path and corridor."""
    features: list[dict[str, Any]] = []
    path = [(w.lat, w.lon) for w in waypoints]
    area = corridor(path, corridor_km)
    if area is not None:
        features.append(_feature(area, kind="corridor", corridor_km=corridor_km))
    if len(path) >= 2:
        features.append(_feature(
            {"type": "LineString", "coordinates": [[lon, lat] for lat, lon in path]},
            kind="lane", corridor_km=corridor_km,
        ))
    for i, w in enumerate(waypoints):
        features.append(_feature(
            {"type": "Point", "coordinates": [w.lon, w.lat]}, kind="waypoint", position=i,
            name=w.name, radius_km=w.radius_km, dwell_allowance_h=w.dwell_allowance_h,
        ))
    track = _dedupe(positions)
    if len(track) >= 2:
        features.append(_feature(
            {"type": "LineString", "coordinates": [[p.lon, p.lat] for p in track]},
            kind="track", points=len(track), first_ts=track[0].ts, last_ts=track[-1].ts,
            times=[p.ts for p in track],
        ))
    if track:
        last = positions[-1]
        features.append(_feature(
            {"type": "Point", "coordinates": [last.lon, last.lat]}, kind="position",
            ts=last.ts, temp_c=last.temp_c, logger_id=last.logger_id,
        ))
    return {"type": "FeatureCollection", "features": features, "properties": meta}
