"""Lane performance from history: transit-time distribution, dwell per waypoint, excursion rate."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alerts.rules import haversine_km


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError("q must be within [0, 100]")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def distribution(values: Sequence[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p10": percentile(values, 10),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p95": percentile(values, 95),
        "max": max(values) if values else None,
    }


@dataclass(frozen=True, slots=True)
class Fix:
    """A position at a device time (epoch seconds)."""

    t: float
    lat: float
    lon: float


def dwell_s(fixes: Sequence[Fix], lat: float, lon: float, radius_km: float) -> float:
    """Time spent within `radius_km` of a point: each stay from its first to its last fix inside."""
    total = 0.0
    entered: float | None = None
    last_in: float | None = None
    for f in fixes:
        inside = haversine_km(lat, lon, f.lat, f.lon) <= radius_km
        if inside:
            if entered is None:
                entered = f.t
            last_in = f.t
        elif entered is not None and last_in is not None:
            total += last_in - entered
            entered = last_in = None
    if entered is not None and last_in is not None:
        total += last_in - entered
    return total


def transit_summary(
    transit_h: Sequence[float], expected_h: float, max_h: float,
    on_time: Sequence[bool] = (),
) -> dict[str, Any]:
    """`on_time`: per delivery, whether it arrived by its hold deadline."""
    dist = distribution(transit_h)
    over = sum(1 for t in transit_h if t > max_h)
    return {
        **dist,
        "expected_h": expected_h,
        "max_allowed_h": max_h,
        "over_expected": sum(1 for t in transit_h if t > expected_h),
        "over_max": over,
        # The lane is still supported by its history when 95 % of journeys fit the validated max.
        "within_validation": bool(transit_h) and (dist["p95"] or 0.0) <= max_h,
        "on_time": sum(on_time),
        "on_time_rate": sum(on_time) / len(on_time) if on_time else None,
    }
