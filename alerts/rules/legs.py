"""A shipment's lanes over time (rule 6, `rerouted`): which lane judges a moment, and the
waypoints of every leg numbered as one sequence (a visit's `waypoint` indexes it)."""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass
from datetime import datetime

from alerts.rules.model import LaneSpec, Leg, Waypoint
from alerts.rules.timeutil import from_us, to_us


@dataclass(frozen=True, slots=True)
class LegView:
    """One lane's stretch of the shipment: [start_us, end_us); None is open on that side."""

    index: int
    start_us: int | None
    end_us: int | None
    lane: LaneSpec
    path: tuple[tuple[float, float], ...]
    offset: int  # number of the leg's first waypoint in the sequence across legs

    @property
    def start(self) -> datetime | None:
        return None if self.start_us is None else from_us(self.start_us)

    @property
    def end(self) -> datetime | None:
        return None if self.end_us is None else from_us(self.end_us)

    def holds(self, t_us: int) -> bool:
        return (self.start_us is None or self.start_us <= t_us) and (
            self.end_us is None or t_us < self.end_us)


@dataclass(frozen=True, slots=True)
class Legs:
    """The lane of registration, then one leg per reroute (in time order)."""

    legs: tuple[LegView, ...]
    starts: tuple[int, ...]  # start of every leg after the first

    @staticmethod
    @functools.lru_cache(maxsize=1024)  # folds and evaluations ask for the same legs again
    def of(lane: LaneSpec, reroutes: tuple[Leg, ...] = ()) -> Legs:
        lanes = (lane, *(r.lane for r in reroutes))
        starts = tuple(to_us(r.start, "Leg.start") for r in reroutes)
        bounds = (None, *starts)
        ends = (*starts, None)
        views, offset = [], 0
        for i, ln in enumerate(lanes):
            views.append(LegView(i, bounds[i], ends[i], ln, ln.path(), offset))
            offset += len(ln.waypoints)
        return Legs(tuple(views), starts)

    @property
    def rerouted(self) -> bool:
        return len(self.legs) > 1

    @property
    def current(self) -> LegView:
        return self.legs[-1]

    def at(self, t_us: int) -> LegView:
        """The leg whose lane applies at device time `t_us` (a reroute applies from its time)."""
        if not self.starts:
            return self.legs[0]
        return self.legs[bisect.bisect_right(self.starts, t_us)]

    def waypoint(self, number: int) -> tuple[LegView, Waypoint]:
        """The leg and waypoint of a number in the sequence across legs."""
        for leg in reversed(self.legs):
            if number >= leg.offset:
                return leg, leg.lane.waypoints[number - leg.offset]
        raise IndexError(number)
