"""Rule 6 and the dwell part of rule 8: stops at waypoints, expected arrival, hold-time margin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.rules.model import (
    EVENT_CUSTOMS_HOLD,
    EVENT_CUSTOMS_RELEASED,
    EVENT_DELIVERED,
    EVENT_DEPARTED,
    EVENT_RECEIVED,
    ShipmentSpec,
)
from alerts.rules.state import Visit
from alerts.rules.timeutil import from_us, require_aware


@dataclass(frozen=True, slots=True)
class Timeline:
    departed_at: datetime | None
    delivered_at: datetime | None  # delivered, or received if that came first
    customs: tuple[tuple[datetime, datetime | None], ...]


def timeline(spec: ShipmentSpec) -> Timeline:
    """The custody timeline from the shipment's events (its columns fill what events lack)."""
    departed = spec.departed_at
    delivered = [t for t in (spec.delivered_at, spec.received_at) if t is not None]
    customs: list[tuple[datetime, datetime | None]] = []
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
    if hold is not None:
        customs.append((hold, None))
    return Timeline(departed, min(delivered) if delivered else None, tuple(customs))


@dataclass(frozen=True, slots=True)
class Stop:
    """A stay at one waypoint (by positions and/or a customs hold); `end` None while ongoing."""

    waypoint: int | None
    name: str
    allowance_s: float
    start: datetime
    end: datetime | None
    customs: bool

    def dwell_s(self, now: datetime) -> float:
        return max(0.0, ((self.end or now) - self.start).total_seconds())

    def overrun_s(self, now: datetime) -> float:
        return max(0.0, self.dwell_s(now) - self.allowance_s)


def stops(
    spec: ShipmentSpec, tl: Timeline, visits: Sequence[Visit], now: datetime
) -> tuple[Stop, ...]:
    """Stops during transit: every logger's waypoint visits and the customs holds, merged.

    A customs hold belongs to the waypoint a logger was visiting when it began, else to the
    first waypoint named like "customs"; with neither, its allowance is zero.
    """
    require_aware(now, "now")
    if tl.departed_at is None:
        return ()
    wps = spec.lane.waypoints
    until = tl.delivered_at
    spans: dict[int | None, list[tuple[datetime, datetime | None, bool]]] = {}
    for v in visits:
        start = max(from_us(v.start), tl.departed_at)
        end = from_us(v.end) if v.end is not None else None
        if until is not None:
            end = min(end or from_us(v.last_in), until)
        if end is not None and end <= start:
            continue
        spans.setdefault(v.waypoint, []).append((start, end, False))
    named = next((i for i, w in enumerate(wps) if "customs" in w.name.casefold()), None)
    loose: list[Stop] = []
    for hold, released in tl.customs:
        end = released if released is not None else until
        at = next(
            (v.waypoint for v in visits
             if from_us(v.start) <= hold <= from_us(v.end if v.end is not None else v.last_in)
             or (v.end is None and from_us(v.start) <= hold)),
            named,
        )
        if at is None:
            loose.append(Stop(None, "customs", 0.0, hold, end, True))
        else:
            spans.setdefault(at, []).append((hold, end, True))
    result = list(loose)
    for wp, items in spans.items():
        assert wp is not None
        w = wps[wp]
        for start, end, customs in _merge(items):
            result.append(Stop(wp, w.name, w.dwell_allowance_h * 3600.0, start, end, customs))
    return tuple(sorted(result, key=lambda s: (s.start, s.name)))


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
    overrun_s: float
    in_transit: bool
    delivered_at: datetime | None
    # Future instants at which the figures start or stop depending on `now` (for the sweep).
    checkpoints: tuple[datetime, ...]
    now_dependent: bool


def hold_time(spec: ShipmentSpec, tl: Timeline, stop_list: Sequence[Stop], now: datetime) -> HoldTime:
    """Deadline = packed + qualified hold; expected arrival = departed + expected transit + overruns."""
    require_aware(now, "now")
    deadline = spec.packed_at + timedelta(hours=spec.qualified_hold_h)
    transit = timedelta(hours=spec.lane.expected_transit_h)
    overrun = sum(s.overrun_s(now) for s in stop_list)
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
            expected = tl.departed_at + transit + timedelta(seconds=overrun)
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
        now_dependent=dependent,
    )
