"""The forecast core: calibration against known distributions, conditioning on the elapsed time,
the lane-spec fallback, and the customs what-if's monotonicity."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.forecast.core import (
    LANE_HISTORY,
    LANE_SPEC,
    Assumption,
    LaneModel,
    Position,
    forecast,
    position_of,
)
from alerts.forecast.history import Circle, segments_h
from app.dashboard.lanes import Fix

# One waypoint (customs, 12 h allowance): travel to it, the hold, travel on.
ALLOWANCES = (12.0,)
TOLERANCE = 0.05  # predicted p50/p90 within 5 % of the true quantiles (n = 400 deliveries)


def _truth(rng: np.random.Generator, n: int) -> np.ndarray:
    """Travel ~ lognormal(median 10 h), customs hold ~ gamma(mean 8 h), last leg ~ normal(6, 1)."""
    return np.column_stack([
        rng.lognormal(math.log(10.0), 0.2, n),
        rng.gamma(2.0, 4.0, n),
        np.clip(rng.normal(6.0, 1.0, n), 0.5, None),
    ])


def _model(rows: np.ndarray, customs: int | None = 0) -> LaneModel:
    return LaneModel(expected_h=24.0, max_h=36.0, allowances_h=ALLOWANCES, customs=customs,
                     totals=tuple(float(x) for x in rows.sum(axis=1)),
                     segments=tuple(tuple(float(x) for x in r) for r in rows))


@pytest.fixture(scope="module")
def history() -> LaneModel:
    return _model(_truth(np.random.default_rng(17), 400))


@pytest.fixture(scope="module")
def population() -> np.ndarray:
    return _truth(np.random.default_rng(4242), 200_000)


def test_calibrated_at_departure(history: LaneModel, population: np.ndarray) -> None:
    total = population.sum(axis=1)
    truth50, truth90 = np.quantile(total, [0.5, 0.9])
    f = forecast(history, Position(0.0, 0, 0.0), until_deadline_h=float(truth90))
    assert f.method == LANE_HISTORY and f.delivered_n == 400
    assert f.p50_h == pytest.approx(truth50, rel=TOLERANCE)
    assert f.p90_h == pytest.approx(truth90, rel=TOLERANCE)
    assert f.on_time_probability == pytest.approx(0.9, abs=0.04)


def test_calibrated_in_customs_given_the_time_held(
    history: LaneModel, population: np.ndarray
) -> None:
    """6 h into the hold: the truth is the remainder of holds that lasted more than 6 h."""
    held = population[population[:, 1] > 6.0]
    rest = held[:, 1] - 6.0 + held[:, 2]
    truth50, truth90 = np.quantile(rest, [0.5, 0.9])
    f = forecast(history, Position(16.0, 1, 6.0), until_deadline_h=100.0)
    assert f.p50_h == pytest.approx(truth50, rel=TOLERANCE)
    assert f.p90_h == pytest.approx(truth90, rel=2 * TOLERANCE)


def test_far_into_a_leg_is_not_forecast_as_just_left(history: LaneModel) -> None:
    fresh = forecast(history, Position(0.0, 0, 0.0), 100.0)
    late = forecast(history, Position(12.0, 0, 12.0), 100.0)
    assert late.p50_h < fresh.p50_h - 6.0


def test_a_hold_past_its_history_has_a_longer_tail(history: LaneModel) -> None:
    """30 h into customs (allowance 12 h), beyond almost every delivered hold: the remainder is
    extrapolated, and its tail grows with the time already held."""
    at30 = forecast(history, Position(40.0, 1, 30.0), 100.0)
    at45 = forecast(history, Position(55.0, 1, 45.0), 100.0)
    assert at30.p90_h - at30.p50_h > 12.0
    assert at45.p90_h - at45.p50_h > at30.p90_h - at30.p50_h


def test_below_ten_deliveries_the_lane_spec_is_used() -> None:
    rows = _truth(np.random.default_rng(1), 9)
    f = forecast(_model(rows), Position(0.0, 0, 0.0), until_deadline_h=36.0)
    assert (f.method, f.delivered_n) == (LANE_SPEC, 9)
    # Log-normal with median = expected (24 h) and 95th percentile = max (36 h).
    assert f.p50_h == pytest.approx(24.0, rel=0.01)
    assert f.p90_h == pytest.approx(24.0 * (36 / 24) ** (1.2816 / 1.6449), rel=0.01)
    assert f.on_time_probability == pytest.approx(0.95, abs=0.01)
    assert forecast(_model(_truth(np.random.default_rng(1), 10)),
                    Position(0.0, 0, 0.0), 36.0).method == LANE_HISTORY


def test_lane_spec_conditions_on_elapsed_and_overrun() -> None:
    spec = LaneModel(24.0, 36.0, ALLOWANCES, customs=0)
    start = forecast(spec, Position(0.0, 0, 0.0), 100.0)
    later = forecast(spec, Position(20.0, 0, 20.0), 100.0)
    assert later.p50_h < start.p50_h - 15.0
    # 30 h in customs with a 12 h allowance: 18 h of overrun still going on.
    held = forecast(spec, Position(40.0, 1, 30.0), 100.0)
    assert held.p50_h > 18.0 * math.log(2)
    assert held.p90_h - held.p50_h > 18.0


@pytest.mark.parametrize(("model_rows", "customs"), [(400, 0), (5, 0), (400, None), (5, None)])
def test_customs_what_if_shifts_the_arrival(model_rows: int, customs: int | None) -> None:
    model = _model(_truth(np.random.default_rng(3), model_rows), customs)
    base = forecast(model, Position(2.0, 0, 2.0), 40.0)
    held = forecast(model, Position(2.0, 0, 2.0), 40.0, Assumption(customs_hold_h=48.0))
    assert held.p50_h > base.p50_h + 30.0
    assert held.on_time_probability < base.on_time_probability
    delayed = forecast(model, Position(2.0, 0, 2.0), 40.0, Assumption(delay_h=10.0))
    assert delayed.p50_h == pytest.approx(base.p50_h + 10.0)


POSITIONS = st.sampled_from([Position(0.0, 0, 0.0), Position(5.0, 0, 5.0), Position(14.0, 1, 4.0),
                             Position(40.0, 1, 30.0), Position(30.0, 2, 2.0)])


@settings(max_examples=60, deadline=None)
@given(n=st.sampled_from([3, 40]), pos=POSITIONS,
       a=st.floats(0, 200), b=st.floats(0, 200), deadline=st.floats(1, 120))
def test_on_time_probability_is_monotone_in_the_customs_hold(
    n: int, pos: Position, a: float, b: float, deadline: float
) -> None:
    model = _model(_truth(np.random.default_rng(n), n))
    short, long_ = sorted((a, b))
    p_short = forecast(model, pos, deadline, Assumption(customs_hold_h=short))
    p_long = forecast(model, pos, deadline, Assumption(customs_hold_h=long_))
    assert p_long.on_time_probability <= p_short.on_time_probability
    assert p_long.p50_h >= p_short.p50_h - 1e-9


@pytest.mark.parametrize(("elapsed", "stops", "expected"), [
    (0.0, [], Position(0.0, 0, 0.0)),
    (5.0, [], Position(5.0, 0, 5.0)),
    (15.0, [(0, 10.0, None)], Position(15.0, 1, 5.0)),
    (40.0, [(0, 10.0, 30.0)], Position(40.0, 2, 10.0, 8.0)),
    (40.0, [(0, 10.0, 20.0)], Position(40.0, 2, 20.0, 0.0)),
])
def test_position_from_stops(elapsed: float, stops: list[tuple[int, float, float | None]],
                             expected: Position) -> None:
    assert position_of(elapsed, stops, ALLOWANCES) == expected


A = Circle(50.0, 8.0, 2.0)
B = Circle(51.0, 9.0, 2.0)


@pytest.mark.parametrize(("fixes", "expected"), [
    # travel 1 h to A, 2 h there, 3 h to B, 1 h there, 1 h to delivery (8 h)
    ([Fix(3600, 50, 8), Fix(3 * 3600, 50, 8), Fix(4 * 3600, 50.5, 8.5), Fix(6 * 3600, 51, 9),
      Fix(7 * 3600, 51, 9)], (1.0, 2.0, 3.0, 1.0, 1.0)),
    # B never seen: no segments
    ([Fix(3600, 50, 8), Fix(4 * 3600, 50.5, 8.5)], None),
    # B seen before A only (out of order): not a passage of the lane
    ([Fix(3600, 51, 9), Fix(2 * 3600, 50, 8)], None),
    # waiting at A before departure: there at departure; seen at B after delivery: arrived by it
    ([Fix(-3600, 50, 8), Fix(0, 50, 8), Fix(3600, 50.5, 8.5), Fix(9 * 3600, 51, 9)],
     (0.0, 0.0, 8.0, 0.0, 0.0)),
])
def test_segments_from_fixes(fixes: list[Fix], expected: tuple[float, ...] | None) -> None:
    assert segments_h(fixes, [A, B], 0.0, 8 * 3600.0) == expected


@settings(max_examples=80, deadline=None)
@given(n=st.sampled_from([0, 4, 12, 60]), segment=st.integers(0, 2),
       in_segment=st.floats(0, 100), extra=st.floats(0, 50), overrun=st.floats(0, 20),
       deadlines=st.tuples(st.floats(-10, 200), st.floats(-10, 200)),
       delay=st.floats(0, 48))
def test_forecasts_are_distributions(
    n: int, segment: int, in_segment: float, extra: float, overrun: float,
    deadlines: tuple[float, float], delay: float,
) -> None:
    """Whatever the history and the place: 0 ≤ p50 ≤ p90, a probability, never lower for a
    later deadline, and a flat delay moves the median by exactly that much."""
    model = _model(_truth(np.random.default_rng(n), n)) if n else LaneModel(24.0, 36.0,
                                                                            ALLOWANCES, 0)
    pos = Position(in_segment + extra, segment, in_segment, overrun)
    early, late = sorted(deadlines)
    a, b = forecast(model, pos, early), forecast(model, pos, late)
    assert 0.0 <= a.p50_h <= a.p90_h and 0.0 <= a.on_time_probability <= 1.0
    assert a.on_time_probability <= b.on_time_probability
    moved = forecast(model, pos, late, Assumption(delay_h=delay))
    assert moved.p50_h == pytest.approx(a.p50_h + delay)
