"""Great-circle distances: point to point (haversine) and point to a polyline (cross-track)."""

from __future__ import annotations

import math
from collections.abc import Sequence

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.atan2(y, x)


def distance_to_segment_km(
    lat: float, lon: float, a: tuple[float, float], b: tuple[float, float]
) -> float:
    """Distance from a point to the great-circle segment a→b (the nearer end beyond its ends)."""
    d_ap = haversine_km(a[0], a[1], lat, lon)
    d_ab = haversine_km(a[0], a[1], b[0], b[1])
    if d_ab == 0.0 or d_ap == 0.0:
        return d_ap
    delta = _bearing(a[0], a[1], lat, lon) - _bearing(a[0], a[1], b[0], b[1])
    if math.cos(delta) <= 0.0:  # the point lies behind a
        return d_ap
    ang = d_ap / EARTH_RADIUS_KM
    xt = math.asin(max(-1.0, min(1.0, math.sin(ang) * math.sin(delta))))
    cos_xt = math.cos(xt)
    along = math.acos(max(-1.0, min(1.0, math.cos(ang) / cos_xt))) * EARTH_RADIUS_KM
    if along >= d_ab:  # beyond b
        return haversine_km(b[0], b[1], lat, lon)
    return abs(xt) * EARTH_RADIUS_KM


def distance_to_path_km(lat: float, lon: float, path: Sequence[tuple[float, float]]) -> float:
    """Shortest distance from (lat, lon) to the polyline `path` (one point: distance to it)."""
    if not path:
        raise ValueError("empty path")
    if len(path) == 1:
        return haversine_km(path[0][0], path[0][1], lat, lon)
    return min(distance_to_segment_km(lat, lon, path[i], path[i + 1]) for i in range(len(path) - 1))
