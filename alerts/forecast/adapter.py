"""From the engine's judgement of a shipment to the forecast core and back to instants (pure).

`Where` is what a forecast needs of the shipment, stored with the forecast so a what-if (or a
later refresh) needs neither the engine nor the shipment's history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from alerts.forecast.core import Assumption, LaneModel, Position, forecast, position_of
from alerts.rules import LaneSpec, ShipmentSpec


class StopLike(Protocol):
    """A stop as the engine judges it (`alerts.rules` holdtime's Stop)."""

    @property
    def waypoint(self) -> int | None: ...
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime | None: ...
    @property
    def leg(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Where:
    """A shipment on its lane in force: departed onto it at `leg_started_at` (None: not yet),
    in `segment` since `segment_since`, with `overrun_h` of dwell overrun at stops left."""

    leg_started_at: datetime | None
    segment: int
    segment_since: datetime | None
    overrun_h: float
    hold_deadline: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class Prediction:
    on_time_probability: float
    arrival_p50: datetime
    arrival_p90: datetime
    method: str
    delivered_n: int

    def margin_h(self, hold_deadline: datetime) -> float:
        """Hold deadline − median arrival (rule 6's margin, on the forecast's median)."""
        return (hold_deadline - self.arrival_p50).total_seconds() / 3600.0


def customs_waypoint(lane: LaneSpec) -> int | None:
    """The waypoint named like "customs" (as the engine places a customs hold without a visit)."""
    return next((i for i, w in enumerate(lane.waypoints) if "customs" in w.name.casefold()), None)


def lane_model(
    lane: LaneSpec, totals: Sequence[float] = (), segments: Sequence[Sequence[float]] = ()
) -> LaneModel:
    return LaneModel(
        expected_h=lane.expected_transit_h, max_h=lane.max_transit_h,
        allowances_h=tuple(w.dwell_allowance_h for w in lane.waypoints),
        customs=customs_waypoint(lane), totals=tuple(totals),
        segments=tuple(tuple(r) for r in segments),
    )


def current_lane(spec: ShipmentSpec) -> LaneSpec:
    return spec.reroutes[-1].lane if spec.reroutes else spec.lane


def where(
    spec: ShipmentSpec, stops: Sequence[StopLike], *, departed_at: datetime | None,
    delivered_at: datetime | None, hold_deadline: datetime,
) -> Where:
    """The shipment's place on the lane in force from the stops the engine found."""
    reroutes = spec.reroutes
    leg = len(reroutes)
    if departed_at is None or delivered_at is not None:
        return Where(departed_at, 0, departed_at, 0.0, hold_deadline, delivered_at)
    start = max(departed_at, reroutes[-1].start) if reroutes else departed_at
    offset = len(spec.lane.waypoints) + sum(len(r.lane.waypoints) for r in reroutes[:-1]) \
        if reroutes else 0
    allowances = [w.dwell_allowance_h for w in current_lane(spec).waypoints]
    mine = [(s.waypoint - offset, _h(s.start - start), None if s.end is None else _h(s.end - start))
            for s in stops if s.leg == leg and s.waypoint is not None and s.waypoint >= offset]
    # Measured back from the last stop's end (or the departure): the elapsed time is added later.
    pos = position_of(float("inf"), mine, allowances)
    since = start
    if pos.segment > 0:
        _, s_start, s_end = max(mine, key=lambda m: m[1])
        since = start + timedelta(hours=s_start if s_end is None else s_end)
    return Where(start, pos.segment, since, pos.overrun_h, hold_deadline, None)


def _h(d: timedelta) -> float:
    return d.total_seconds() / 3600.0


def position(w: Where, now: datetime) -> Position:
    if w.leg_started_at is None or now <= w.leg_started_at:
        return Position(0.0, 0, 0.0)
    since = w.segment_since or w.leg_started_at
    return Position(_h(now - w.leg_started_at), w.segment, max(0.0, _h(now - since)), w.overrun_h)


def predict(
    model: LaneModel, w: Where, now: datetime, what_if: Assumption = Assumption()
) -> Prediction:
    """Arrival distribution from `now` (a shipment not yet gone leaves no earlier than now; a
    delivered one has arrived: certain, on time or not, whatever is assumed)."""
    if w.delivered_at is not None:
        on_time = 1.0 if w.delivered_at <= w.hold_deadline else 0.0
        return Prediction(on_time, w.delivered_at, w.delivered_at, model.method, model.delivered_n)
    f = forecast(model, position(w, now), _h(w.hold_deadline - now), what_if)
    return Prediction(
        on_time_probability=f.on_time_probability,
        arrival_p50=now + timedelta(hours=f.p50_h), arrival_p90=now + timedelta(hours=f.p90_h),
        method=f.method, delivered_n=f.delivered_n,
    )
