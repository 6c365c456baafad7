"""A delivered shipment's journey as lane segments, from its position fixes (pure; the fixes
are lane performance's)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from alerts.rules import haversine_km
from app.dashboard.lanes import Fix


@dataclass(frozen=True, slots=True)
class Circle:
    lat: float
    lon: float
    radius_km: float

    def holds(self, f: Fix) -> bool:
        return haversine_km(self.lat, self.lon, f.lat, f.lon) <= self.radius_km


def segments_h(
    fixes: Sequence[Fix], waypoints: Sequence[Circle], departed: float, delivered: float
) -> tuple[float, ...] | None:
    """Hours of travel to each waypoint, dwell at it, …, and the final leg (2n + 1 values), or
    None when a waypoint's passage was not seen (no fix inside it, in order, in transit).

    A passage runs from the first fix inside the waypoint after the previous passage to the
    last fix of that stay. Times are clipped to [departed, delivered]: a shipper waiting at its
    first waypoint before departure is there at departure, one seen at its destination after
    delivery (readings come every few minutes) arrived by the delivery.
    """
    inside = [Fix(min(max(f.t, departed), delivered), f.lat, f.lon)
              for f in sorted(fixes, key=lambda f: f.t)]
    out: list[float] = []
    at, i = departed, 0
    for w in waypoints:
        while i < len(inside) and not w.holds(inside[i]):
            i += 1
        if i == len(inside):
            return None
        entry = inside[i].t
        while i + 1 < len(inside) and w.holds(inside[i + 1]):
            i += 1
        leave = inside[i].t
        i += 1
        out += [(entry - at) / 3600.0, (leave - entry) / 3600.0]
        at = leave
    out.append((delivered - at) / 3600.0)
    return tuple(out)
