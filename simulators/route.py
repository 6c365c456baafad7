"""Lane/route model: where a shipper is along its waypoints and legs, and what surrounds it."""

from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_KM = 6371.0088
MOVES = ("truck", "van", "flight")
STOPS = ("dwell", "customs")


@dataclass(frozen=True, slots=True)
class Waypoint:
    name: str
    lat: float
    lon: float
    radius_km: float
    dwell_allowance_h: float


@dataclass(frozen=True, slots=True)
class Step:
    """One piece of the journey: a stop at a waypoint or a move to the next one.

    `detour_km` pushes a move sideways off the straight path (a diversion), peaking mid-leg.
    `coverage` None means the default: no network in flight or in a customs hall.
    `release` False leaves a customs hold open (the journey ends inside it).
    """

    kind: str
    seconds: float
    ambient: str
    waypoint: int  # stops: where; moves: the destination
    coverage: bool | None = None
    detour_km: float = 0.0
    release: bool = True

    def __post_init__(self) -> None:
        if self.kind not in MOVES + STOPS:
            raise ValueError(f"unknown step kind {self.kind!r}")
        if self.seconds <= 0:
            raise ValueError("a step lasts a positive time")

    @property
    def is_move(self) -> bool:
        return self.kind in MOVES

    @property
    def has_coverage(self) -> bool:
        if self.coverage is not None:
            return self.coverage
        return self.kind not in ("flight", "customs")


@dataclass(frozen=True, slots=True)
class Segment:
    start_s: float
    end_s: float
    step: Step
    origin: int  # waypoint index the segment starts from


@dataclass(frozen=True, slots=True)
class Route:
    waypoints: tuple[Waypoint, ...]
    segments: tuple[Segment, ...]

    @classmethod
    def build(cls, waypoints: tuple[Waypoint, ...], steps: tuple[Step, ...]) -> Route:
        if not steps or steps[0].is_move:
            raise ValueError("a route starts with a stop at its first waypoint")
        if steps[0].waypoint != 0:
            raise ValueError("a route starts at waypoint 0")
        segs: list[Segment] = []
        here = 0
        t = 0.0
        for st in steps:
            if not 0 <= st.waypoint < len(waypoints):
                raise ValueError(f"step refers to waypoint {st.waypoint} of {len(waypoints)}")
            if not st.is_move and st.waypoint != here:
                raise ValueError(f"a stop at waypoint {st.waypoint} while at {here}")
            segs.append(Segment(t, t + st.seconds, st, here))
            t += st.seconds
            here = st.waypoint
        return cls(waypoints, tuple(segs))

    @property
    def duration_s(self) -> float:
        return self.segments[-1].end_s

    def segment_at(self, offset_s: float) -> Segment:
        for seg in self.segments:
            if offset_s < seg.end_s:
                return seg
        return self.segments[-1]

    def position_at(self, offset_s: float) -> tuple[float, float] | None:
        """Where the shipper is; None in flight (no GPS fix in a cargo hold)."""
        seg = self.segment_at(offset_s)
        st = seg.step
        if not st.is_move:
            wp = self.waypoints[st.waypoint]
            return wp.lat, wp.lon
        if st.kind == "flight":
            return None
        a, b = self.waypoints[seg.origin], self.waypoints[st.waypoint]
        f = min(1.0, max(0.0, (offset_s - seg.start_s) / (seg.end_s - seg.start_s)))
        lat = a.lat + (b.lat - a.lat) * f
        lon = a.lon + (b.lon - a.lon) * f
        if st.detour_km:
            lat, lon = _offset_sideways(a, b, lat, lon, st.detour_km * math.sin(math.pi * f))
        return lat, lon


def _offset_sideways(a: Waypoint, b: Waypoint, lat: float, lon: float, km: float) -> tuple[float, float]:
    """Move a point `km` to the left of the direction a → b (local flat-earth approximation)."""
    coslat = math.cos(math.radians(lat))
    dx = (b.lon - a.lon) * coslat
    dy = b.lat - a.lat
    norm = math.hypot(dx, dy) or 1.0
    nx, ny = -dy / norm, dx / norm  # unit normal, in "degrees of latitude"
    deg = math.degrees(km / EARTH_KM)
    return lat + ny * deg, lon + nx * deg / max(coslat, 1e-6)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(math.sqrt(h))


def distance_to_path_km(lat: float, lon: float, waypoints: tuple[Waypoint, ...]) -> float:
    """Distance from a point to the polyline through the waypoints (local projection per segment)."""
    best = math.inf
    for a, b in zip(waypoints, waypoints[1:], strict=False):
        coslat = math.cos(math.radians((a.lat + b.lat) / 2))
        ax, ay = a.lon * coslat, a.lat
        bx, by = b.lon * coslat, b.lat
        px, py = lon * coslat, lat
        vx, vy = bx - ax, by - ay
        seg2 = vx * vx + vy * vy
        f = 0.0 if seg2 == 0 else max(0.0, min(1.0, ((px - ax) * vx + (py - ay) * vy) / seg2))
        qx, qy = ax + vx * f, ay + vy * f
        best = min(best, haversine_km(lat, lon, qy, qx / coslat))
    if len(waypoints) == 1:
        best = haversine_km(lat, lon, waypoints[0].lat, waypoints[0].lon)
    return best
