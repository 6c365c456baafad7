"""Rule 6 and the dwell part of rule 8: stops at waypoints, expected arrival, hold-time margin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.rules.legs import Legs, LegView
from alerts.rules.model import (
    EVENT_CUSTOMS_HOLD,
    EVENT_CUSTOMS_RELEASED,
    EVENT_DELIVERED,
    EVENT_DEPARTED,
    EVENT_RECEIVED,
    EVENT_RECHARGED,
    ShipmentSpec,
)
from alerts.rules.state import Visit
from alerts.rules.timeutil import from_us, require_aware


@dataclass(frozen=True, slots=True)
class Timeline:
    departed_at: datetime | None
    delivered_at: datetime | None  # delivered, or received if that came first
    customs: tuple[tuple[datetime, datetime | None], ...]
    # When the hold clock started: packed, then every recharge (re-iced, LN2 recharged).
    charges: tuple[datetime, ...]
    legs: Legs


def timeline(spec: ShipmentSpec) -> Timeline:
    """The custody timeline from the shipment's events (its columns fill what events lack)."""
    departed = spec.departed_at
    delivered = [t for t in (spec.delivered_at, spec.received_at) if t is not None]
    customs: list[tuple[datetime, datetime | None]] = []
    charges = {spec.packed_at}
    hold: datetime | None = None
    for ev in sorted(spec.events, key=lambda e: e.at):
        if ev.type == EVENT_DEPARTED and departed is None:
            departed = ev.at
        elif ev.type in (EVENT_DELIVERED, EVENT_RECEIVED):
            delivered.append(ev.at)
        elif ev.type == EVENT_CUSTOMS_HOLD and hold is None:
            hold = ev.at
        elif ev.type == EVENT_CUSTOMS_RELEASED and hold is not None:
            customs.append((hold, ev.at))
            hold = None
        elif ev.type == EVENT_RECHARGED:
            charges.add(ev.at)
    if hold is not None:
        customs.append((hold, None))
    return Timeline(departed, min(delivered) if delivered else None, tuple(customs),
                    tuple(sorted(charges)), Legs.of(spec.lane, spec.reroutes))


@dataclass(frozen=True, slots=True)
class Stop:
    """A stay at one waypoint (by positions and/or a customs hold); `end` None while ongoing.
    `leg`: the lane (0 = of registration, then one per reroute) the stay was judged by."""

    waypoint: int | None
    name: str
    allowance_s: float
    start: datetime
    end: datetime | None
    customs: bool
    leg: int = 0

    def dwell_s(self, now: datetime) -> float:
        return max(0.0, ((self.end or now) - self.start).total_seconds())

    def overrun_s(self, now: datetime) -> float:
        return max(0.0, self.dwell_s(now) - self.allowance_s)


Span = tuple[datetime, datetime | None, bool]


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    """The earlier of two ends (None: open)."""
    if a is None:
        return b
    return a if b is None else min(a, b)


def stops(
    spec: ShipmentSpec, tl: Timeline, visits: Sequence[Visit], now: datetime
) -> tuple[Stop, ...]:
    """Stops during transit: every logger's waypoint visits and the customs holds, merged.

    A customs hold belongs to the waypoint a logger was visiting when it began, else to the
    first waypoint named like "customs"; with neither, its allowance is zero. After a reroute
    the new lane's waypoints apply: a stay or hold that spans the reroute is cut there, and
    its part after it is judged by the new lane.
    """
    require_aware(now, "now")
    if tl.departed_at is None:
        return ()
    legs = tl.legs
    until = tl.delivered_at
    spans: dict[int, list[Span]] = {}
    for v in visits:
        leg, _ = legs.waypoint(v.waypoint)
        start = max(from_us(v.start), tl.departed_at)
        end = from_us(v.end) if v.end is not None else None
        if leg.end is not None:
            end = _earlier(end, leg.end)
        if until is not None:
            end = min(end or from_us(v.last_in), until)
        if end is not None and end <= start:
            continue
        spans.setdefault(v.waypoint, []).append((start, end, False))
    loose: list[Stop] = []
    for hold, released in tl.customs:
        end = released if released is not None else until
        for leg in legs.legs:
            part_start = hold if leg.start is None else max(hold, leg.start)
            part_end = _earlier(end, leg.end)
            if (part_end is not None and part_end <= part_start) or (
                    end is not None and leg.start is not None and leg.start >= end):
                continue
            at = _holder(leg, visits, legs, part_start)
            if at is None:
                loose.append(Stop(None, "customs", 0.0, part_start, part_end, True, leg.index))
            else:
                spans.setdefault(at, []).append((part_start, part_end, True))
    result = list(loose)
    for wp, items in spans.items():
        leg, w = legs.waypoint(wp)
        for start, end, customs in _merge(items):
            result.append(Stop(wp, w.name, w.dwell_allowance_h * 3600.0, start, end, customs,
                               leg.index))
    return tuple(sorted(result, key=lambda s: (s.start, s.name)))


def _holder(leg: LegView, visits: Sequence[Visit], legs: Legs, at: datetime) -> int | None:
    """The waypoint (numbered across legs) a customs hold beginning at `at` on `leg` belongs to."""
    for v in visits:
        if legs.waypoint(v.waypoint)[0].index != leg.index or from_us(v.start) > at:
            continue
        if v.end is None or at <= from_us(v.end):
            return v.waypoint
    named = next((i for i, w in enumerate(leg.lane.waypoints) if "customs" in w.name.casefold()),
                 None)
    return None if named is None else leg.offset + named


def _merge(
    items: list[tuple[datetime, datetime | None, bool]],
) -> list[tuple[datetime, datetime | None, bool]]:
    out: list[tuple[datetime, datetime | None, bool]] = []
    for start, end, customs in sorted(items, key=lambda i: i[0]):
        if out and (out[-1][1] is None or start <= out[-1][1]):
            s0, e0, c0 = out[-1]
            merged_end = None if e0 is None or end is None else max(e0, end)
            out[-1] = (s0, merged_end, c0 or customs)
        else:
            out.append((start, end, customs))
    return out


@dataclass(frozen=True, slots=True)
class HoldTime:
    deadline: datetime
    expected_arrival: datetime
    margin_h: float
    overrun_s: float  # dwell overrun on the lane in force, pushing the expected arrival
    in_transit: bool
    delivered_at: datetime | None
    # Future instants at which the figures start or stop depending on `now` (for the sweep).
    checkpoints: tuple[datetime, ...]
    now_dependent: bool
    charged_at: datetime  # when the hold clock last started (packed or recharged)
    # Deadlines that passed before the next recharge, the delivery or now: the hold ran out.
    breached: tuple[datetime, ...] = ()
    leg: int = 0  # the lane in force: 0 = of registration, then one per reroute


def run_outs(
    charges: Sequence[datetime], hold: timedelta, delivered_at: datetime | None, now: datetime
) -> tuple[datetime, ...]:
    """The deadlines that passed before their charge ended: a recharge must come before the
    deadline; a delivery at the deadline is in time; a charge still going ran out at it."""
    out = []
    ordered = sorted(charges)
    for i, charged in enumerate(ordered):
        deadline = charged + hold
        if i + 1 < len(ordered):
            ran_out = ordered[i + 1] >= deadline
        elif delivered_at is not None:
            ran_out = delivered_at > deadline
        else:
            ran_out = now >= deadline
        if ran_out:
            out.append(deadline)
    return tuple(out)


def hold_time(spec: ShipmentSpec, tl: Timeline, stop_list: Sequence[Stop], now: datetime) -> HoldTime:
    """Deadline = last charge (packed or recharged) + qualified hold; expected arrival =
    departure (or the reroute onto the lane in force, if later) + that lane's expected transit
    + the dwell overruns on it."""
    require_aware(now, "now")
    hold = timedelta(hours=spec.qualified_hold_h)
    deadline = tl.charges[-1] + hold
    leg = tl.legs.current
    transit = timedelta(hours=leg.lane.expected_transit_h)
    overrun = sum(s.overrun_s(now) for s in stop_list if s.leg == leg.index)
    marks: list[datetime] = [deadline]
    dependent = False
    if tl.delivered_at is not None:
        expected = tl.delivered_at
    else:
        if tl.departed_at is None:
            # Not yet gone: it cannot leave before now, so every waiting hour counts.
            expected = max(now, spec.packed_at) + transit
            dependent = now >= spec.packed_at
        else:
            start = tl.departed_at if leg.start is None else max(tl.departed_at, leg.start)
            expected = start + transit + timedelta(seconds=overrun)
        for s in stop_list:
            if s.end is None:
                over_at = s.start + timedelta(seconds=s.allowance_s)
                marks.append(over_at)
                dependent = dependent or now >= over_at
        marks.append(expected)
        if expected <= now:  # overdue: it has not arrived, so it arrives no earlier than now
            expected = now
            dependent = True
    margin_h = (deadline - expected).total_seconds() / 3600.0
    return HoldTime(
        deadline=deadline, expected_arrival=expected, margin_h=margin_h, overrun_s=overrun,
        in_transit=tl.departed_at is not None and tl.departed_at <= now and tl.delivered_at is None,
        delivered_at=tl.delivered_at, checkpoints=tuple(m for m in marks if m > now),
        now_dependent=dependent, charged_at=tl.charges[-1],
        breached=run_outs(tl.charges, hold, tl.delivered_at, now),
        leg=leg.index,
    )
