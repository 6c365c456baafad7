"""Arrival forecasts (pure: numbers in, numbers out): a lane model from its delivered history
or its validated spec, and the distribution of a shipment's remaining time given where it is.

Times are hours. A lane's journey is a sequence of segments: travel to waypoint 0, dwell at
waypoint 0, travel to waypoint 1, …, dwell at the last waypoint, travel to the destination
(segment 2w travels to waypoint w, 2w + 1 dwells at it; 2n is the final leg).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

# Below this many delivered shipments the lane's validated spec is the model (issue 17).
MIN_HISTORY = 10
# History rows that must outlast the elapsed time in the current segment for their own
# remainders to be the forecast; fewer, and the residual is extrapolated (exponential tail).
MIN_SURVIVORS = 5
# Quantile grid for the parametric parts (equal-probability points: an unbiased discretisation).
GRID = 200
# Points of a residual that is added to every draw of the rest (the sum has points × draws).
TAIL = 64
Z_RANGE, Z_TABLE = 6.0, 12_001  # the standard normal CDF tabulated once (see _normal_quantiles)
# The smallest mean residual assumed for a segment that has outlasted its history (15 min).
MIN_RESIDUAL_H = 0.25
Z95 = NormalDist().inv_cdf(0.95)
UNKNOWN = -1  # a position's segment before the engine has placed the shipment
LANE_HISTORY = "lane_history"
LANE_SPEC = "lane_spec"
Floats = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class LaneModel:
    """What a lane's forecasts come from.

    `segments`: one row per delivered shipment whose every waypoint passage was seen (hours per
    segment, 2n + 1 columns); `totals`: the transit time of every delivered shipment (hours).
    """

    expected_h: float
    max_h: float
    allowances_h: tuple[float, ...]
    customs: int | None  # the waypoint that holds customs (named like "customs"), if any
    totals: tuple[float, ...] = ()
    segments: tuple[tuple[float, ...], ...] = ()

    @property
    def delivered_n(self) -> int:
        return len(self.totals)

    @property
    def method(self) -> str:
        return LANE_HISTORY if self.delivered_n >= MIN_HISTORY else LANE_SPEC


@dataclass(frozen=True, slots=True)
class Position:
    """Where a shipment is on its lane (`now` implied: every time is measured back from it).

    `elapsed_h`: since departure onto this lane (0 before departure). `segment`: the segment it
    is in (see the module doc; UNKNOWN: not yet placed, forecast from the total transit);
    `in_segment_h`: since the segment began. `overrun_h`: dwell beyond the allowances at stops
    already left (time a nominal journey does not contain).
    """

    elapsed_h: float
    segment: int
    in_segment_h: float
    overrun_h: float = 0.0


@dataclass(frozen=True, slots=True)
class Assumption:
    """A what-if: a customs hold lasting at least `customs_hold_h` in total, and a flat delay."""

    customs_hold_h: float = 0.0
    delay_h: float = 0.0


@dataclass(frozen=True, slots=True)
class Forecast:
    """The remaining time's median and 90th percentile (hours from now) and the probability of
    arriving within `until_deadline_h`."""

    p50_h: float
    p90_h: float
    on_time_probability: float
    method: str
    delivered_n: int


def remaining_h(model: LaneModel, pos: Position, what_if: Assumption = Assumption()) -> Floats:
    """Equally weighted draws of the remaining time to arrival (hours)."""
    if model.method == LANE_HISTORY:
        rows = np.asarray(model.segments, dtype=np.float64)
        width = 2 * len(model.allowances_h) + 1
        if len(rows) >= MIN_HISTORY and rows.shape[1] == width and 0 <= pos.segment < width:
            out = _by_segments(model, rows, pos, what_if)
        else:
            out = _by_total(np.asarray(model.totals, dtype=np.float64), model, pos, what_if)
    else:
        out = _by_total(_spec_grid(model), model, pos, what_if)
    return np.maximum(out + what_if.delay_h, 0.0)


def forecast(
    model: LaneModel, pos: Position, until_deadline_h: float, what_if: Assumption = Assumption()
) -> Forecast:
    draws = remaining_h(model, pos, what_if)
    p50, p90 = np.quantile(draws, [0.5, 0.9])
    return Forecast(
        p50_h=float(p50), p90_h=float(p90),
        on_time_probability=float(np.mean(draws <= until_deadline_h)),
        method=model.method, delivered_n=model.delivered_n,
    )


def _grid(points: int = GRID) -> Floats:
    return (np.arange(points, dtype=np.float64) + 0.5) / points


def _exponential(mean_h: float, points: int = GRID) -> Floats:
    return -mean_h * np.log1p(-_grid(points))


def _customs_extra(model: LaneModel, pos: Position, what_if: Assumption) -> float:
    """A hold at a customs waypoint not yet reached, beyond its allowance (the spec's nominal
    transit already contains the allowance); with no customs ahead, the whole hold."""
    h = what_if.customs_hold_h
    if h <= 0:
        return 0.0
    c = model.customs
    if c is None or pos.segment > 2 * c + 1:
        return h
    if pos.segment == 2 * c + 1:
        return 0.0  # being held now: handled with the current stop
    return max(0.0, h - model.allowances_h[c])


def _by_segments(model: LaneModel, rows: Floats, pos: Position, what_if: Assumption) -> Floats:
    """History with every passage seen: the current segment's remainder (from the rows that
    outlasted the time already spent, else an exponential tail) plus the later segments."""
    i, e = pos.segment, pos.in_segment_h
    later = rows[:, i + 1:].copy()
    c = model.customs
    h = what_if.customs_hold_h
    if h > 0 and c is not None and 2 * c + 1 > i:
        col = 2 * c + 1 - (i + 1)
        later[:, col] = np.maximum(later[:, col], h)
    held_now = h > 0 and c is not None and i == 2 * c + 1
    flat = 0.0 if held_now or (c is not None and 2 * c + 1 > i) else (h if h > 0 else 0.0)
    current = rows[:, i]
    survivors = current > e
    if survivors.sum() >= MIN_SURVIVORS:
        rest = current[survivors] - e
        if held_now:
            rest = np.maximum(rest, h - e)
        return np.asarray(rest + later[survivors].sum(axis=1) + flat, dtype=np.float64)
    tail = _exponential(_tail_mean(current, e, model, i), TAIL)
    if held_now:
        tail = np.maximum(tail, h - e)
    return np.asarray((tail[:, None] + later.sum(axis=1)[None, :]).ravel() + flat,
                      dtype=np.float64)


def _tail_mean(current: Floats, e: float, model: LaneModel, i: int) -> float:
    """A segment past its history: memoryless with the segment's mean, or with the overrun so
    far (a hold that has gone on long is expected to go on), whichever is longer."""
    over = e - (model.allowances_h[i // 2] if i % 2 else float(np.max(current, initial=0.0)))
    return max(float(np.mean(current)) if len(current) else 0.0, over, MIN_RESIDUAL_H)


def _spec_grid(model: LaneModel) -> Floats:
    """The spec's transit distribution: log-normal, median = expected transit, 95th percentile
    = max transit (a near-point mass when max ≤ expected)."""
    return _lognormal_quantiles(model, np.asarray(_grid()))


def _sigma(model: LaneModel) -> float:
    if model.max_h > model.expected_h > 0:
        return math.log(model.max_h / model.expected_h) / Z95
    return 0.01


@functools.cache
def _z_table() -> tuple[Floats, Floats]:
    z = np.linspace(-Z_RANGE, Z_RANGE, Z_TABLE)
    return np.asarray([NormalDist().cdf(float(x)) for x in z], dtype=np.float64), z


def _normal_quantiles(u: Floats) -> Floats:
    """Standard normal quantiles: the CDF tabulated at z steps of 0.001 and inverted by linear
    interpolation (error < 1e-6; a forecast needs hundreds and the stdlib's inverse costs ~3 µs
    each), exact beyond |z| = 6."""
    table_u, table_z = _z_table()
    z = np.interp(u, table_u, table_z)
    for i in np.flatnonzero((u < table_u[0]) | (u > table_u[-1])):
        z[i] = NormalDist().inv_cdf(float(min(max(u[i], 1e-12), 1 - 1e-12)))
    return z


def _lognormal_quantiles(model: LaneModel, u: Floats) -> Floats:
    mu = math.log(max(model.expected_h, 1e-6))
    return np.asarray(np.exp(mu + _sigma(model) * _normal_quantiles(u)), dtype=np.float64)


def _nominal_elapsed(model: LaneModel, pos: Position) -> tuple[float, float]:
    """Time of the nominal journey already done, and the current stop's overrun so far."""
    current_over = 0.0
    if pos.segment != UNKNOWN and pos.segment % 2 == 1:
        current_over = max(0.0, pos.in_segment_h - model.allowances_h[pos.segment // 2])
    return max(0.0, pos.elapsed_h - pos.overrun_h - current_over), current_over


def _by_total(
    totals: Floats, model: LaneModel, pos: Position, what_if: Assumption
) -> Floats:
    """Transit of the whole journey given the nominal part already done (overruns taken out);
    a stop that overruns its allowance adds its own residual (exponential, mean = the overrun
    so far, at least 15 min)."""
    done, current_over = _nominal_elapsed(model, pos)
    if model.method == LANE_SPEC:
        base = _spec_remaining(model, done)
    else:
        survivors = totals[totals > done]
        if len(survivors) >= MIN_SURVIVORS:
            base = survivors - done
        else:
            base = _exponential(max(float(np.mean(totals)) * 0.1, done - float(np.max(totals)),
                                    MIN_RESIDUAL_H))
    extra = _customs_extra(model, pos, what_if)
    c = model.customs
    held_now = what_if.customs_hold_h > 0 and c is not None and pos.segment == 2 * c + 1
    if current_over > 0 or held_now:
        stop = _exponential(max(current_over, MIN_RESIDUAL_H), TAIL) if current_over > 0 else \
            np.zeros(TAIL)
        if held_now:
            allowance = model.allowances_h[pos.segment // 2]
            # Held for h in total: it stays at least h - (time there), of which the part past
            # the allowance is not in the nominal journey.
            stop = np.maximum(stop, what_if.customs_hold_h - max(pos.in_segment_h, allowance))
        return (base[:, None] + stop[None, :]).ravel() + extra
    return base + extra


def _spec_remaining(model: LaneModel, done_h: float) -> Floats:
    """Exact conditional quantiles of the log-normal transit given it exceeds `done_h`."""
    if done_h <= 0:
        return _spec_grid(model)
    mu = math.log(max(model.expected_h, 1e-6))
    f0 = NormalDist().cdf((math.log(done_h) - mu) / _sigma(model))
    if f0 >= 1 - 1e-9:
        # Far past anything the spec allows: memoryless, with the spread of the spec's tail.
        return _exponential(max(model.max_h - model.expected_h, MIN_RESIDUAL_H))
    u = f0 + _grid() * (1 - f0)
    return np.maximum(_lognormal_quantiles(model, u) - done_h, 0.0)


def position_of(
    elapsed_h: float, stops: Sequence[tuple[int, float, float | None]], allowances_h: Sequence[float]
) -> Position:
    """A shipment's position from its stops on the lane in force, as (waypoint, start, end)
    hours since departure (end None: there now). Time at a waypoint beyond its allowance, at
    stops left, is the overrun."""
    if elapsed_h <= 0:
        return Position(0.0, 0, 0.0)
    overrun = 0.0
    segment, since = 0, 0.0
    for w, start, end in sorted(stops, key=lambda s: s[1]):
        if end is None:
            segment, since = 2 * w + 1, start
            continue
        overrun += max(0.0, (end - start) - allowances_h[w])
        segment, since = 2 * w + 2, end
    return Position(elapsed_h, segment, max(0.0, elapsed_h - since), overrun)
