"""Ambient temperature profiles a shipper meets on a lane (ISTA 7E-like cycles, tarmac, cold rooms)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AmbientProfile:
    """A periodic, piecewise-linear ambient temperature: points are (hour in cycle, °C)."""

    name: str
    points: tuple[tuple[float, float], ...]
    period_h: float = 24.0

    def at(self, hours: float) -> float:
        """Ambient °C at `hours` since the timeline start (cycles repeat every period)."""
        pts = self.points
        if len(pts) == 1:
            return pts[0][1]
        h = hours % self.period_h
        # The cycle wraps: the segment after the last point leads back to the first one.
        for (h0, t0), (h1, t1) in zip(pts, pts[1:], strict=False):
            if h0 <= h < h1:
                return t0 + (t1 - t0) * (h - h0) / (h1 - h0)
        h_last, t_last = pts[-1]
        h_first, t_first = pts[0]
        span = self.period_h - h_last + h_first
        into = (h - h_last) if h >= h_last else (h + self.period_h - h_last)
        return t_last + (t_first - t_last) * into / span


def constant(name: str, temp_c: float) -> AmbientProfile:
    return AmbientProfile(name, ((0.0, temp_c),))


# Shapes inspired by ISTA 7E's 24 h summer and winter cycles (not a copy of the standard's table):
# the qualification profiles a passive shipper is designed to survive for its hold time.
PROFILES: dict[str, AmbientProfile] = {
    p.name: p
    for p in (
        AmbientProfile(
            "ista7e_summer",
            ((0.0, 22.0), (4.0, 22.0), (5.0, 28.0), (10.0, 28.0), (11.0, 35.0), (14.0, 35.0),
             (15.0, 28.0), (20.0, 28.0), (21.0, 22.0)),
        ),
        AmbientProfile(
            "ista7e_winter",
            ((0.0, 10.0), (4.0, 10.0), (5.0, 0.0), (10.0, 0.0), (11.0, -10.0), (14.0, -10.0),
             (15.0, 0.0), (20.0, 0.0), (21.0, 10.0)),
        ),
        # A sun-baked apron in a hot hub: the shipper's surface sees far more than the air.
        AmbientProfile(
            "tarmac_summer",
            ((0.0, 30.0), (6.0, 32.0), (10.0, 46.0), (14.0, 52.0), (17.0, 46.0), (21.0, 34.0)),
        ),
        AmbientProfile(
            "truck_summer",
            ((0.0, 20.0), (8.0, 24.0), (13.0, 30.0), (18.0, 26.0), (22.0, 21.0)),
        ),
        AmbientProfile(
            "truck_winter",
            ((0.0, 2.0), (8.0, 4.0), (13.0, 8.0), (18.0, 5.0), (22.0, 3.0)),
        ),
        constant("room", 21.0),
        constant("warehouse", 18.0),
        constant("customs_hall", 24.0),
        constant("aircraft_hold", 12.0),
        constant("cold_room", 5.0),
        constant("reefer", 5.0),
        constant("freezer_room", -20.0),
    )
}


def profile(name: str) -> AmbientProfile:
    """A named profile, or `const:<°C>` for a constant ambient."""
    if name.startswith("const:"):
        return constant(name, float(name.removeprefix("const:")))
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown ambient profile {name!r}") from None
