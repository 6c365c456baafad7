"""The mutable working copy of one logger's state while readings are folded into it (rules 1–4,
8 and 9 per logger); `alerts.rules.advance` is its public face."""

from __future__ import annotations

import math
from dataclasses import dataclass

from alerts.rules.geo import distance_to_path_km, haversine_km
from alerts.rules.legs import Legs, LegView
from alerts.rules.mkt import DELTA_H_OVER_R, KELVIN
from alerts.rules.model import (
    BATTERY_LOW,
    LIGHT_EXPOSURE,
    ROUTE_DEVIATION,
    SHOCK,
    TEMPERATURE_CRITICAL,
    TEMPERATURE_HIGH,
    TEMPERATURE_LOW,
    Sample,
    SeriesContext,
    peak_score,
)
from alerts.rules.state import Crossing, Episode, LoggerState
from alerts.rules.timeutil import US, from_us, to_us
from alerts.rules.tracking import MutableEpisode, MutableRun, MutableVisit, freeze_episode

BUDGET_LEVELS = (50, 80, 100)
# Runs that are recorded as excursions (`GET /shipments/{id}/excursions`).
EXCURSION_KINDS = (
    TEMPERATURE_HIGH, TEMPERATURE_LOW, TEMPERATURE_CRITICAL, LIGHT_EXPOSURE, ROUTE_DEVIATION,
)


class OutOfOrder(ValueError):
    """A reading older than the state's latest device time: re-evaluate from a checkpoint."""

    def __init__(self, logger_id: str, ts_us: int, last_us: int) -> None:
        super().__init__(f"reading of {logger_id} at {from_us(ts_us)} precedes {from_us(last_us)}")
        self.logger_id, self.ts_us, self.last_us = logger_id, ts_us, last_us


@dataclass(frozen=True, slots=True)
class ExcursionRecord:
    """Rule 3's excursion: first reading in the condition to the first reading out of it."""

    logger_id: str
    kind: str
    start_us: int
    end_us: int | None
    known_s: float  # time in the condition by sample-and-hold
    unknown_s: float  # time within it past the max gap
    peak: float | None
    alarmed: bool
    retroactive: bool


def alarm_delays_us(ctx: SeriesContext) -> dict[str, int]:
    """How long each delayed condition must last before it alarms (the others: at once)."""
    delay = int(ctx.product.alarm_delay_s * US)
    return {TEMPERATURE_HIGH: delay, TEMPERATURE_LOW: delay, TEMPERATURE_CRITICAL: 0,
            LIGHT_EXPOSURE: 0, ROUTE_DEVIATION: int(ctx.config.route_delay_s * US), BATTERY_LOW: 0}


def record(logger_id: str, kind: str, run: MutableRun, end_us: int | None) -> ExcursionRecord:
    return ExcursionRecord(
        logger_id, kind, run.start, end_us, run.known_us / US, run.unknown_us / US, run.peak,
        run.alarm_us is not None, run.late,
    )


class Fold:
    """The mutable working copy of a LoggerState while one batch is folded in."""

    def __init__(self, s: LoggerState, ctx: SeriesContext) -> None:
        p = ctx.product
        self.ctx, self.logger_id, self.fingerprint = ctx, s.logger_id, s.fingerprint
        self.gap_us = int(ctx.max_gap_s * US)
        self.clear_us = int(ctx.clear_s * US)
        self.budget_us = int(p.stability_budget_s * US)
        self.delays = alarm_delays_us(ctx)
        self.legs = Legs.of(ctx.lane, ctx.reroutes)
        # Set while the latest reading is held to the wall clock (`hold_to`): what the hold
        # establishes is retroactive when learnt more than the max gap after it happened.
        self.now: int | None = None
        self.count, self.first, self.last = s.count, s.first_us, s.last_us
        self.temp, self.lat, self.lon = s.last_temp, s.last_lat, s.last_lon
        self.battery, self.rx = s.last_battery, s.max_received_us
        self.min_c, self.max_c = s.min_c, s.max_c
        self.held, self.out, self.high, self.low = s.held_us, s.out_us, s.high_us, s.low_us
        self.unknown = s.unknown_us
        self.mkt_terms, self.mkt_weight, self.temp_weight = s.mkt_terms, s.mkt_weight_s, s.temp_weight
        self.crossings = list(s.crossings)
        self.runs = {k: MutableRun.thaw(r) for k, r in s.runs.items()}
        # Episodes are thawed per kind on first use: a long record's old episodes are copied
        # only when their kind changes.
        self.frozen_eps = s.episodes
        self.eps: dict[str, list[MutableEpisode]] = {}
        self.visit = MutableVisit.thaw(s.visit) if s.visit else None
        self.visits = [MutableVisit.thaw(v) for v in s.visits]
        self.trend = list(s.trend)
        self.since_checkpoint = s.since_checkpoint
        self.closed: list[ExcursionRecord] = []
        self.checkpoints: list[LoggerState] = []
        self.duplicates = 0

    # -- one reading ---------------------------------------------------------------------------
    def fold(self, r: Sample) -> None:
        t = to_us(r.ts, "Sample.ts")
        if r.logger_id != self.logger_id:
            raise ValueError(f"reading of {r.logger_id} folded into {self.logger_id}'s state")
        if not math.isfinite(r.temp_c):
            raise ValueError("temperature must be finite")
        rx = None if r.received_at is None else to_us(r.received_at, "Sample.received_at")
        late = rx is not None and rx - t > self.gap_us
        if self.last is not None:
            if t < self.last:
                raise OutOfOrder(self.logger_id, t, self.last)
            if t == self.last:  # (logger_id, ts) is a reading's identity: a duplicate
                self.duplicates += 1
                return
            self._hold_until(t, late)
        else:
            self.first = t
        in_range_before = TEMPERATURE_HIGH not in self.runs and TEMPERATURE_LOW not in self.runs
        self._judge(r, t, late)
        if in_range_before != (TEMPERATURE_HIGH not in self.runs and TEMPERATURE_LOW not in self.runs):
            # A trend spanning an excursion's edge would extrapolate the jump itself.
            self.trend.clear()
        if rx is not None and (self.rx is None or rx > self.rx):
            self.rx = rx
        self.count += 1
        self.last, self.temp = t, r.temp_c
        self.min_c = r.temp_c if self.min_c is None else min(self.min_c, r.temp_c)
        self.max_c = r.temp_c if self.max_c is None else max(self.max_c, r.temp_c)
        if r.lat is not None and r.lon is not None:
            self.lat, self.lon = r.lat, r.lon
        if r.battery_pct is not None:
            self.battery = r.battery_pct
        self._trend(t, r.temp_c)
        self.since_checkpoint += 1
        if self.since_checkpoint >= self.ctx.config.checkpoint_every:
            self.since_checkpoint = 0
            self.checkpoints.append(self.freeze())

    def _hold_until(self, t: int, late: bool) -> None:
        """Rule 2: the previous reading's state holds until `t`, for at most the max gap."""
        assert self.last is not None and self.temp is not None
        gap = t - self.last
        held = min(gap, self.gap_us)
        unknown = gap - held
        self.held += held
        self.unknown += unknown
        weight = held / US
        self.mkt_terms += weight * math.exp(-DELTA_H_OVER_R / (self.temp + KELVIN))
        self.mkt_weight += weight
        self.temp_weight += weight * self.temp
        # Rule 3 / defect of known-time-only delays: an excursion lasts from its first reading to
        # its latest evidence, here the held value, also across unknown time inside it.
        evidence = self.last + held
        for kind, run in self.runs.items():
            run.known_us += held
            run.unknown_us += unknown
            due = run.start + self.delays[kind]
            if run.alarm_us is None and due <= evidence:
                at = max(due, self.last)
                self._alarm(kind, run, at, self._late(at, late))
        if TEMPERATURE_HIGH in self.runs or TEMPERATURE_LOW in self.runs:
            before = self.out
            self.out += held
            if TEMPERATURE_HIGH in self.runs:
                self.high += held
            else:
                self.low += held
            self._budget(before, late)

    def _budget(self, before: int, late: bool) -> None:
        """Rule 4: note the device time each budget level is first reached."""
        assert self.last is not None
        reached = {c.level for c in self.crossings}
        for level in BUDGET_LEVELS:
            threshold = self.budget_us * level // 100
            if level not in reached and self.out >= threshold and self.out > 0:
                at = self.last + max(0, threshold - before)
                self.crossings.append(Crossing(level, at, self._late(at, late)))

    def _late(self, at: int, late: bool) -> bool:
        return late if self.now is None else self.now - at > self.gap_us

    def _episodes(self, kind: str) -> list[MutableEpisode]:
        eps = self.eps.get(kind)
        if eps is None:
            eps = self.eps[kind] = [MutableEpisode.thaw(e) for e in self.frozen_eps.get(kind, ())]
        return eps

    def _judge(self, r: Sample, t: int, late: bool) -> None:
        p, cfg = self.ctx.product, self.ctx.config
        temp = r.temp_c
        high, low = temp > p.temp_max_c, temp < p.temp_min_c
        self._step(TEMPERATURE_HIGH, t, late, high, not high, temp)
        self._step(TEMPERATURE_LOW, t, late, low, not low, temp)
        crit = (p.critical_max_c is not None and temp > p.critical_max_c) or (
            p.critical_min_c is not None and temp < p.critical_min_c
        )
        self._step(TEMPERATURE_CRITICAL, t, late, crit, not crit, temp)
        if p.light_sensitive and r.light is not None:
            self._step(LIGHT_EXPOSURE, t, late, r.light, not r.light, None)
        if r.lat is not None and r.lon is not None:
            # Rule 6: from a reroute on, the new lane's path and corridor judge the position;
            # what came before stays judged by the lane it was on.
            leg = self.legs.at(t)
            if len(leg.path) >= 2:
                dist = distance_to_path_km(r.lat, r.lon, leg.path)
                outside = dist > leg.lane.corridor_km
                self._step(ROUTE_DEVIATION, t, late, outside, not outside, dist)
            elif ROUTE_DEVIATION in self.runs:  # rerouted onto a lane without a path
                self._step(ROUTE_DEVIATION, t, late, False, True, None)
            self._visit(t, r.lat, r.lon, leg)
        if r.battery_pct is not None:
            b = r.battery_pct
            self._step(BATTERY_LOW, t, late, b < cfg.battery_low_pct, b >= cfg.battery_clear_pct, b)
        if p.shock_limit_g is not None and r.shock_g is not None:
            self._shock(t, late, r.shock_g, r.shock_g > p.shock_limit_g)

    def _peak(self, kind: str, old: float | None, value: float | None) -> float | None:
        """The worse of two values of a condition, in the direction of its breach."""
        if value is None:
            return old
        if old is None:
            return value
        p = self.ctx.product
        return value if peak_score(kind, value, p) > peak_score(kind, old, p) else old

    def _step(
        self, kind: str, t: int, late: bool, enter: bool, leave: bool, value: float | None
    ) -> None:
        """Advance one condition's run with a reading that enters, leaves or keeps it."""
        run = self.runs.get(kind)
        if run is not None:
            if leave:
                self._end_run(kind, run, t)
            else:
                run.peak = self._peak(kind, run.peak, value)
                if run.alarm_us is None and t - run.start >= self.delays[kind]:
                    self._alarm(kind, run, t, late)  # proven by this reading, across a gap
                if run.alarm_us is not None or run.absorbed:
                    ep = self._episodes(kind)[-1]
                    ep.last_us = t
                    ep.peak = self._peak(kind, ep.peak, value)
            return
        if enter:
            self._start_run(kind, t, late, value)
        else:
            self._confirm(kind, t)

    def _start_run(self, kind: str, t: int, late: bool, value: float | None) -> None:
        self._confirm(kind, t)  # clear since the last episode ended, readings or not
        eps = self._episodes(kind)
        absorbed = bool(eps) and not eps[-1].confirmed
        run = MutableRun(t, peak=value, late=late, absorbed=absorbed)
        self.runs[kind] = run
        if absorbed:  # back in the condition before the episode cleared: the same episode
            eps[-1].end = None
            eps[-1].last_us = t
            eps[-1].peak = self._peak(kind, eps[-1].peak, value)
        if self.delays[kind] == 0:
            self._alarm(kind, run, t, late)

    def _alarm(self, kind: str, run: MutableRun, at: int, late: bool) -> None:
        run.alarm_us = at
        eps = self._episodes(kind)
        if run.absorbed:
            eps[-1].count += 1
            eps[-1].last_us = max(eps[-1].last_us, at)
        else:
            eps.append(MutableEpisode(run.start, at, late=late, peak=run.peak, last_us=at))

    def _end_run(self, kind: str, run: MutableRun, t: int) -> None:
        del self.runs[kind]
        if kind in EXCURSION_KINDS:
            self.closed.append(record(self.logger_id, kind, run, t))
        if run.alarm_us is not None or run.absorbed:
            self._episodes(kind)[-1].end = t
        self._confirm(kind, t)

    def _confirm(self, kind: str, t: int) -> None:
        eps = self.eps.get(kind)
        last = eps[-1] if eps else None
        if eps is None and self.frozen_eps.get(kind):
            frozen = self.frozen_eps[kind][-1]
            if frozen.confirmed or frozen.end is None or t - frozen.end < self.clear_us:
                return  # nothing to change: leave the kind frozen
            last = self._episodes(kind)[-1]
        if last is not None and not last.confirmed and last.end is not None and (
            t - last.end >= self.clear_us
        ):
            last.confirmed = True

    def _shock(self, t: int, late: bool, g: float, over: bool) -> None:
        """Shocks are instants: those closer than the clear time form one episode."""
        self._confirm(SHOCK, t)
        if over:
            eps = self._episodes(SHOCK)
            if eps and not eps[-1].confirmed:
                ep = eps[-1]
                ep.count += 1
                ep.end = ep.last_us = t
                ep.peak = self._peak(SHOCK, ep.peak, g)
            else:
                eps.append(MutableEpisode(t, t, end=t, late=late, peak=g, last_us=t))

    def _visit(self, t: int, lat: float, lon: float, leg: LegView) -> None:
        """Rule 8: stays within a waypoint's radius of the lane in force; re-entries within the
        clear time merge. Waypoints are numbered across legs, so a stay never spans a reroute."""
        wp = -1
        for i, w in enumerate(leg.lane.waypoints):
            if haversine_km(w.lat, w.lon, lat, lon) <= w.radius_km:
                wp = leg.offset + i
                break
        v = self.visit
        if v is not None:
            if v.waypoint == wp:
                v.last_in = t
                return
            v.end = min(t, v.last_in + self.gap_us)
            if leg.start_us is not None and leg.start_us > v.last_in:
                v.end = min(v.end, leg.start_us)  # the old lane's stay ends at the reroute
            self.visits.append(v)
            self.visit = None
        if wp < 0:
            return
        prev = self.visits[-1] if self.visits else None
        if prev is not None and prev.waypoint == wp and prev.end is not None and (
            t - prev.end < self.clear_us
        ):
            self.visits.pop()
            prev.end, prev.last_in = None, t
            self.visit = prev
        else:
            self.visit = MutableVisit(wp, t, t)

    def _trend(self, t: int, temp: float) -> None:
        cfg = self.ctx.config
        self.trend.append((t, temp))
        horizon = t - int(cfg.trend_window_s * US)
        while self.trend and self.trend[0][0] < horizon:
            self.trend.pop(0)
        if len(self.trend) > cfg.trend_points:
            del self.trend[: len(self.trend) - cfg.trend_points]

    def freeze(self) -> LoggerState:
        return LoggerState(
            logger_id=self.logger_id, fingerprint=self.fingerprint, count=self.count,
            first_us=self.first, last_us=self.last, last_temp=self.temp, last_lat=self.lat,
            last_lon=self.lon, last_battery=self.battery, max_received_us=self.rx,
            min_c=self.min_c, max_c=self.max_c, held_us=self.held, out_us=self.out,
            high_us=self.high, low_us=self.low, unknown_us=self.unknown,
            mkt_terms=self.mkt_terms, mkt_weight_s=self.mkt_weight, temp_weight=self.temp_weight,
            crossings=tuple(self.crossings),
            runs={k: r.freeze() for k, r in self.runs.items()},
            episodes=self._frozen_episodes(),
            visit=self.visit.freeze() if self.visit else None,
            visits=tuple(v.freeze() for v in self.visits),
            trend=tuple(self.trend), since_checkpoint=self.since_checkpoint,
        )

    def _frozen_episodes(self) -> dict[str, tuple[Episode, ...]]:
        out = {k: v for k, v in self.frozen_eps.items() if k not in self.eps}
        out.update({k: tuple(freeze_episode(e) for e in v) for k, v in self.eps.items() if v})
        return out

    # -- the wall clock (rule 2: the latest reading holds up to min(now, its time + max gap)) --
    def hold_to(self, until: int, now: int) -> None:
        assert self.last is not None
        self.now = now
        self._hold_until(until, False)
        evidence = min(until, self.last + self.gap_us)
        for kind, run in self.runs.items():
            if run.alarm_us is not None or run.absorbed:
                ep = self._episodes(kind)[-1]
                ep.last_us = max(ep.last_us, evidence)
        for kind in {*self.frozen_eps, *self.eps} - set(self.runs):
            self._confirm(kind, evidence)

