"""Judge a shipment at `now` from its loggers' states: summary figures and active conditions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts.rules import conditions as cond
from alerts.rules.advance import hold_due, hold_to
from alerts.rules.figures import shipment_figures
from alerts.rules.holdtime import HoldTime, Stop, hold_time, stops, timeline
from alerts.rules.model import (
    ALL_KINDS,
    BATTERY_LOW,
    DWELL_EXCEEDED,
    HOLD_TIME_AT_RISK,
    HOLD_TIME_EXCEEDED,
    LIGHT_EXPOSURE,
    ROUTE_DEVIATION,
    SHOCK,
    SIGNAL_LOST,
    STABILITY_BUDGET,
    TEMPERATURE_CRITICAL,
    TEMPERATURE_HIGH,
    TEMPERATURE_LOW,
    ShipmentSpec,
)
from alerts.rules.state import Episode, LoggerState
from alerts.rules.timeutil import US, from_us, opt_from_us, require_aware, to_us
from alerts.rules.trend import projected_breach_us

EPISODIC_KINDS = (TEMPERATURE_HIGH, TEMPERATURE_LOW, TEMPERATURE_CRITICAL, LIGHT_EXPOSURE,
                  ROUTE_DEVIATION, BATTERY_LOW, SHOCK)
BUDGET_SEVERITY = {50: "info", 80: "warning", 100: "critical"}


@dataclass(frozen=True, slots=True)
class Memo:
    """Shipment-level memory of time-driven conditions: since when each has held."""

    since: Mapping[str, datetime] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"since": {k: v.isoformat() for k, v in self.since.items()}}

    @staticmethod
    def from_json(data: Mapping[str, Any] | None) -> Memo:
        since = (data or {}).get("since", {})
        return Memo({k: require_aware(datetime.fromisoformat(v)) for k, v in since.items()})


@dataclass(frozen=True, slots=True)
class Summary:
    reading_count: int
    first_reading_at: datetime | None
    last_reading_at: datetime | None
    last_temp_c: float | None
    last_lat: float | None
    last_lon: float | None
    min_c: float | None
    max_c: float | None
    mean_c: float | None
    mkt_c: float | None
    time_out_of_range_s: float
    time_unknown_s: float
    stability_budget_used_s: float
    stability_budget_left_s: float
    hold_deadline: datetime
    expected_arrival: datetime
    margin_h: float
    projected_breach_at: datetime | None
    in_transit: bool
    delivered_at: datetime | None
    dwell_overrun_s: float


@dataclass(frozen=True, slots=True)
class Evaluation:
    summary: Summary
    conditions: Mapping[str, tuple[cond.Condition, ...]]
    memo: Memo
    next_check_at: datetime
    stops: tuple[Stop, ...]


def evaluate(
    spec: ShipmentSpec,
    states: Mapping[str, LoggerState],
    last_received: Mapping[str, datetime | None],
    memo: Memo,
    now: datetime,
    *,
    phase: float = 0.0,
) -> Evaluation:
    """Rules 2–11 for the whole shipment. Per-logger figures combine by taking the worst.

    `phase` ∈ [0, 1) spreads the routine re-check between half and all of
    `max_check_interval_s`, so shipments evaluated together do not all fall due together.
    """
    require_aware(now, "now")
    cfg = spec.config
    clear_us = int(spec.clear_s * US)
    tl = timeline(spec)
    delivered = tl.delivered_at is not None
    live, due = _held(spec, states, now, tl.delivered_at)
    visits = [v for s in live for v in (*s.visits, *([s.visit] if s.visit else []))]
    stop_list = stops(spec, tl, visits, now)
    hold = hold_time(spec, tl, stop_list, now)
    conditions: dict[str, tuple[cond.Condition, ...]] = {k: () for k in ALL_KINDS}
    for kind in EPISODIC_KINDS:
        per_logger: list[tuple[str, Episode]] = [
            (s.logger_id, ep) for s in live for ep in s.episodes.get(kind, ())
        ]
        conditions[kind] = cond.merge_logger_episodes(
            kind, per_logger, clear_us, delivered=delivered, product=spec.product
        )
    conditions[STABILITY_BUDGET] = _budget(spec, live)
    conditions[DWELL_EXCEEDED] = _dwell(stop_list, now)
    signal, signal_next = _signal_lost(spec, states, last_received, hold, tl.departed_at, now)
    conditions[SIGNAL_LOST] = signal
    risk, exceeded, new_memo = _hold_conditions(spec, hold, memo, now)
    conditions[HOLD_TIME_AT_RISK] = risk
    conditions[HOLD_TIME_EXCEEDED] = exceeded
    summary = _summary(spec, live, hold)
    routine = cfg.max_check_interval_s * (1.0 - 0.5 * min(max(phase, 0.0), 0.999))
    marks = [*hold.checkpoints, *signal_next, *due, now + timedelta(seconds=routine)]
    if hold.now_dependent and not delivered:
        # The margin shrinks one-for-one with time: the moments it crosses the safety margin
        # and zero (where hold_time_at_risk turns critical).
        for slack in (hold.margin_h - spec.safety_margin_h, hold.margin_h):
            if slack > 0:
                marks.append(now + timedelta(hours=slack))
    next_check = min(m for m in marks if m > now)
    return Evaluation(summary, conditions, new_memo, next_check, stop_list)


def judged_states(
    spec: ShipmentSpec, states: Mapping[str, LoggerState], now: datetime
) -> list[LoggerState]:
    """The loggers' states as `evaluate` judges them at `now` (rule 2 by the wall clock: each
    latest reading held to min(now, its time + max gap), not past delivery); loggers without
    readings left out. What a report states about the record, so it says what the engine judged."""
    require_aware(now, "now")
    return _held(spec, states, now, timeline(spec).delivered_at)[0]


def _held(
    spec: ShipmentSpec, states: Mapping[str, LoggerState], now: datetime,
    delivered_at: datetime | None,
) -> tuple[list[LoggerState], list[datetime]]:
    """Rule 2 by the wall clock: each logger's latest reading holds up to min(now, its time +
    max gap) — not past delivery — so a silent logger's last value keeps counting (alarm
    delay, budget, clear time). Also the future moments at which that hold changes a condition.
    """
    now_us = to_us(now)
    cap_us = now_us if delivered_at is None else min(now_us, to_us(delivered_at))
    live: list[LoggerState] = []
    due: list[datetime] = []
    for logger_id, gap_s in spec.max_gap_s:
        state = states.get(logger_id)
        if state is None or state.count == 0 or state.last_us is None:
            continue
        ctx = spec.context(logger_id)
        until = min(cap_us, state.last_us + int(gap_s * US))
        live.append(hold_to(state, ctx, until, now_us))
        due.extend(from_us(t) for t in hold_due(state, ctx)
                   if t > now_us and (delivered_at is None or t <= to_us(delivered_at)))
    return live, due


def _budget(spec: ShipmentSpec, live: list[LoggerState]) -> tuple[cond.Condition, ...]:
    """Rule 4: the worst logger's budget use; one episode escalating through 50/80/100 %."""
    first: dict[int, tuple[int, bool]] = {}
    for s in live:
        for c in s.crossings:
            if c.level not in first or c.at_us < first[c.level][0]:
                first[c.level] = (c.at_us, c.late)
    if not first:
        return ()
    level = max(first)
    used = max(s.out_us for s in live) / US
    budget = spec.product.stability_budget_s
    start_us, late = first[min(first)]
    details = {
        "level_pct": level, "used_s": used, "budget_s": budget,
        "used_pct": round(100.0 * used / budget, 1) if budget > 0 else None,
        "crossed": {str(k): from_us(v[0]).isoformat() for k, v in sorted(first.items())},
    }
    return (cond.Condition(
        kind=STABILITY_BUDGET, start=from_us(start_us), severity=BUDGET_SEVERITY[level],
        retroactive=late, last_evidence=from_us(first[level][0]), count=len(first),
        loggers=tuple(sorted(s.logger_id for s in live if s.crossings)), details=details,
    ),)


def _dwell(stop_list: tuple[Stop, ...], now: datetime) -> tuple[cond.Condition, ...]:
    out = []
    for s in stop_list:
        if s.waypoint is None or s.dwell_s(now) <= s.allowance_s:
            continue
        details = {"waypoint": s.name, "dwell_h": round(s.dwell_s(now) / 3600.0, 3),
                   "allowance_h": s.allowance_s / 3600.0,
                   "overrun_h": round(s.overrun_s(now) / 3600.0, 3), "customs": s.customs}
        out.append(cond.Condition(
            kind=DWELL_EXCEEDED, start=s.start + timedelta(seconds=s.allowance_s),
            severity=cond.SEVERITY[DWELL_EXCEEDED], end=s.end, cleared=s.end is not None,
            last_evidence=s.end or now, details=details,
        ))
    return tuple(out)


def _signal_lost(
    spec: ShipmentSpec, states: Mapping[str, LoggerState],
    last_received: Mapping[str, datetime | None], hold: HoldTime,
    departed_at: datetime | None, now: datetime,
) -> tuple[tuple[cond.Condition, ...], list[datetime]]:
    """Rule 7, by receive time: silent longer than the max gap while in transit."""
    if not hold.in_transit or departed_at is None:
        return (), []
    lost: list[tuple[str, datetime, datetime]] = []
    upcoming: list[datetime] = []
    for logger_id, gap_s in spec.max_gap_s:
        state = states.get(logger_id)
        seen = [t for t in (last_received.get(logger_id),
                            opt_from_us(state.max_received_us) if state else None) if t]
        base = max([departed_at, *seen])
        since = base + timedelta(seconds=gap_s)
        if now > since:
            lost.append((logger_id, since, base))
        else:
            upcoming.append(since + timedelta(microseconds=1))
    if not lost:
        return (), upcoming
    start = min(s for _, s, _ in lost)
    details = {"loggers": sorted(lid for lid, _, _ in lost),
               "last_received": {lid: b.isoformat() for lid, _, b in lost}}
    return (cond.Condition(
        kind=SIGNAL_LOST, start=start, severity=cond.SEVERITY[SIGNAL_LOST], last_evidence=now,
        loggers=tuple(sorted(lid for lid, _, _ in lost)), details=details,
    ),), upcoming


def _hold_conditions(
    spec: ShipmentSpec, hold: HoldTime, memo: Memo, now: datetime
) -> tuple[tuple[cond.Condition, ...], tuple[cond.Condition, ...], Memo]:
    """Rule 6: at risk while the margin is below the safety margin; exceeded past the deadline."""
    since = dict(memo.since)
    details = {"hold_deadline": hold.deadline.isoformat(),
               "expected_arrival": hold.expected_arrival.isoformat(),
               "margin_h": round(hold.margin_h, 3), "safety_margin_h": spec.safety_margin_h,
               "dwell_overrun_h": round(hold.overrun_s / 3600.0, 3),
               "hold_started_at": hold.charged_at.isoformat()}
    exceeded: tuple[cond.Condition, ...] = ()
    if hold.breached:
        # The latest charge that ran out: a recharge afterwards does not undo that the product
        # sat past its qualified hold (a person resolves it); a new run-out is a new episode.
        exceeded = (cond.Condition(
            kind=HOLD_TIME_EXCEEDED, start=hold.breached[-1],
            severity=cond.SEVERITY[HOLD_TIME_EXCEEDED], last_evidence=now,
            details={**details, "hold_ran_out_at": [t.isoformat() for t in hold.breached]}),)
    threshold = spec.safety_margin_h
    if HOLD_TIME_AT_RISK in since:  # hysteresis: clears only with room to spare
        threshold += spec.config.hold_risk_clear_s / 3600.0
    at_risk = hold.delivered_at is None and now < hold.deadline and hold.margin_h < threshold
    risk: tuple[cond.Condition, ...] = ()
    if at_risk:
        start = since.setdefault(HOLD_TIME_AT_RISK, now)
        # Margin ≤ 0: the lane can no longer deliver before the deadline. Critical now, while
        # there is still time to act (re-ice, expedite), not once the deadline has passed.
        severity = "critical" if hold.margin_h <= 0 else cond.SEVERITY[HOLD_TIME_AT_RISK]
        risk = (cond.Condition(
            kind=HOLD_TIME_AT_RISK, start=start, severity=severity, last_evidence=now,
            details=details),)
    else:
        since.pop(HOLD_TIME_AT_RISK, None)
    return risk, exceeded, Memo(since)


def _summary(spec: ShipmentSpec, live: list[LoggerState], hold: HoldTime) -> Summary:
    cfg = spec.config
    latest = max(live, key=lambda s: (s.last_us or 0, s.logger_id), default=None)
    figures = shipment_figures(live, spec.product)
    used = figures.time_out_of_range_s
    breaches = [b for s in live if (b := projected_breach_us(s, spec.product, cfg)) is not None]
    return Summary(
        reading_count=figures.reading_count,
        first_reading_at=opt_from_us(
            min((s.first_us for s in live if s.first_us is not None), default=None)
        ),
        last_reading_at=opt_from_us(latest.last_us if latest else None),
        last_temp_c=latest.last_temp if latest else None,
        last_lat=latest.last_lat if latest else None,
        last_lon=latest.last_lon if latest else None,
        min_c=figures.min_c, max_c=figures.max_c, mean_c=figures.mean_c, mkt_c=figures.mkt_c,
        time_out_of_range_s=used, time_unknown_s=figures.time_unknown_s,
        stability_budget_used_s=used,
        stability_budget_left_s=max(0.0, spec.product.stability_budget_s - used),
        hold_deadline=hold.deadline, expected_arrival=hold.expected_arrival,
        margin_h=hold.margin_h, projected_breach_at=opt_from_us(min(breaches, default=None)),
        in_transit=hold.in_transit, delivered_at=hold.delivered_at,
        dwell_overrun_s=hold.overrun_s,
    )


def at_risk(summary: Summary, safety_margin_h: float, live_severities: list[str]) -> bool:
    """The fleet view's flag: short of margin, a breach projected before arrival, or a live
    warning/critical alert — while the shipment is still on its way."""
    if summary.delivered_at is not None:
        return False
    if summary.margin_h < safety_margin_h:
        return True
    if summary.projected_breach_at is not None and (
        summary.projected_breach_at <= summary.expected_arrival
    ):
        return True
    return any(s in ("warning", "critical") for s in live_severities)
