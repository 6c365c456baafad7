"""One logger's series: rules 1–4 (device time, sample-and-hold, excursions, budget), hand-computed."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from alerts.rules import NaiveDatetimeError, OutOfOrder, ProductProfile, Sample, advance, initial_state
from alerts.rules.advance import open_excursions
from alerts.rules.state import state_from_json, state_to_json
from alerts.rules.timeutil import to_us
from tests.unit.rules_support import FRIDGE, at, ctx, fold, series

DELAYED = replace(FRIDGE, alarm_delay_s=600.0)


def us(minutes: float) -> int:
    return to_us(at(minutes))


@pytest.mark.parametrize(
    ("points", "max_gap_s", "out_s", "unknown_s", "held_s"),
    [
        # A reading holds until the next one: 9 °C at 5 min holds 5 min.
        ([(0, 5.0), (5, 9.0), (10, 5.0)], 900, 300, 0, 600),
        # ...for at most the max gap (15 min); the other 45 min are unknown.
        ([(0, 9.0), (60, 5.0)], 900, 900, 2700, 900),
        # exactly the max gap is still known.
        ([(0, 9.0), (15, 5.0)], 900, 900, 0, 900),
        # below range counts against the budget too.
        ([(0, 5.0), (5, 1.0), (10, 1.0), (15, 5.0)], 900, 600, 0, 900),
        # the last reading has not held for any time yet.
        ([(0, 5.0), (5, 9.0)], 900, 0, 0, 300),
        ([(0, 5.0), (5, 6.0), (10, 7.0)], 900, 0, 0, 600),
        # the limits themselves are in range.
        ([(0, 8.0), (5, 2.0), (10, 8.0)], 900, 0, 0, 600),
    ],
)
def test_sample_and_hold(
    points: list[tuple[float, float]], max_gap_s: float, out_s: float, unknown_s: float,
    held_s: float,
) -> None:
    state = fold(series(points), ctx(max_gap_s=max_gap_s))
    assert state.out_us == out_s * 1e6
    assert state.unknown_us == unknown_s * 1e6
    assert state.held_us == held_s * 1e6


def test_excursion_spans_first_out_to_first_back_in_range() -> None:
    result = advance(initial_state("L1", c := ctx()), series([(0, 5), (5, 9), (10, 9.5), (70, 5)]), c)
    (exc,) = result.closed
    assert (exc.kind, exc.start_us, exc.end_us) == ("temperature_high", us(5), us(70))
    assert (exc.known_s, exc.unknown_s, exc.peak) == (300 + 900, 2700, 9.5)


@pytest.mark.parametrize(
    ("points", "alarm_at"),
    [
        ([(0, 9), (5, 9), (10, 5)], 10),  # lasted exactly the delay: an alarm
        ([(0, 9), (5, 9), (9.99, 5)], None),  # 1 s short of it: no alarm
        ([(0, 9), (5, 9), (10, 9), (15, 9)], 10),  # ongoing: at the reading that proves it
        ([(0, 9), (60, 9)], 10),  # held 15 min (max gap) ≥ 10 min
        ([(0, 9), (7, 5), (8, 9), (15, 5)], None),  # two short excursions don't add up
    ],
)
def test_alarm_delay_boundaries(points: list[tuple[float, float]], alarm_at: float | None) -> None:
    state = fold(series(points), ctx(DELAYED))
    eps = state.episodes.get("temperature_high", ())
    if alarm_at is None:
        assert eps == ()
    else:
        (ep,) = eps
        assert ep.alarm_us == us(alarm_at)
        assert ep.start == us(points[0][0])  # condition_since is the excursion's start


def test_delay_zero_alarms_on_the_first_out_of_range_reading() -> None:
    state = fold(series([(0, 5), (5, 8.1)]), ctx())
    (ep,) = state.episodes["temperature_high"]
    assert (ep.start, ep.alarm_us, ep.end) == (us(5), us(5), None)


def test_critical_limit_alarms_at_once_despite_the_delay() -> None:
    product = replace(FRIDGE, alarm_delay_s=1800.0, critical_max_c=15.0, critical_min_c=0.0)
    state = fold(series([(0, 5), (5, 16), (10, 5), (15, -1), (20, 5)]), ctx(product))
    assert "temperature_high" not in state.episodes  # 5 min < 30 min delay
    (ep,) = state.episodes["temperature_critical"]
    assert (ep.start, ep.alarm_us, ep.count, ep.peak) == (us(5), us(5), 2, 16)


def test_budget_levels_are_reached_at_interpolated_device_times() -> None:
    product = replace(FRIDGE, stability_budget_s=1200.0)
    state = fold(series([(0, 9), (5, 9), (10, 9), (15, 9), (20, 9), (25, 5)]), ctx(product))
    crossings = {c.level: c.at_us for c in state.crossings}
    assert crossings == {50: us(10), 80: us(16), 100: us(20)}
    assert state.out_us == 1500e6


def test_zero_budget_is_used_up_by_any_time_out_of_range() -> None:
    product = replace(FRIDGE, stability_budget_s=0.0)
    state = fold(series([(0, 9), (1, 5)]), ctx(product))
    assert {c.level for c in state.crossings} == {50, 80, 100}


def test_flapping_at_a_limit_is_one_episode_until_clear_for_the_clear_time() -> None:
    flap = [(0, 8.2), (5, 7.9), (10, 8.3), (15, 7.8), (20, 8.1), (25, 7.9), (30, 7.9), (35, 7.9)]
    state = fold(series(flap), ctx())
    (ep,) = state.episodes["temperature_high"]
    assert (ep.start, ep.end, ep.count, ep.peak, ep.confirmed) == (us(0), us(25), 3, 8.3, False)
    state = fold(series([*flap, (40, 7.9)]), ctx())  # 15 min back in range: cleared
    assert state.episodes["temperature_high"][0].confirmed
    state = fold(series([*flap, (40, 7.9), (45, 8.5)]), ctx())  # later: a new episode
    assert [e.start for e in state.episodes["temperature_high"]] == [us(0), us(45)]


def test_duplicates_change_nothing_and_earlier_readings_are_refused() -> None:
    c = ctx()
    readings = series([(0, 5), (5, 9), (10, 5)])
    state = fold(readings, c)
    again = advance(state, [readings[-1], Sample("L1", at(10), 99.0)], c)
    assert again.duplicates == 2 and again.state == state
    with pytest.raises(OutOfOrder):
        advance(state, series([(7, 5)]), c)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(NaiveDatetimeError):
        Sample("L1", datetime(2026, 11, 20, 8, 0), 5.0)  # noqa: DTZ001


def test_late_reading_marks_its_excursion_retroactive() -> None:
    late = Sample("L1", at(5), 9.0, received_at=at(5) + timedelta(hours=2))
    result = advance(initial_state("L1", c := ctx()), [*series([(0, 5)]), late], c)
    assert result.state.episodes["temperature_high"][0].late
    (exc,) = open_excursions(result.state)
    assert exc.retroactive and exc.end_us is None


def test_light_exposure_only_for_light_sensitive_products() -> None:
    points = [(0, False), (5, True), (10, True), (15, False)]
    readings = [Sample("L1", at(m), 5.0, light=lit) for m, lit in points]
    (ep,) = fold(readings, ctx()).episodes["light_exposure"]
    assert (ep.start, ep.end) == (us(5), us(15))
    dark = replace(FRIDGE, light_sensitive=False)
    assert "light_exposure" not in fold(readings, ctx(dark)).episodes


def test_shocks_closer_than_the_clear_time_are_one_episode() -> None:
    product = replace(FRIDGE, shock_limit_g=5.0)
    shocks = [(0, 6.0), (5, 8.0), (10, 1.0), (30, 7.0), (35, 5.0)]
    readings = [Sample("L1", at(m), 5.0, shock_g=g) for m, g in shocks]
    eps = fold(readings, ctx(product)).episodes["shock"]
    assert [(e.start, e.count, e.peak) for e in eps] == [(us(0), 2, 8.0), (us(30), 1, 7.0)]


def test_battery_low_with_hysteresis() -> None:
    levels = [(0, 30.0), (5, 19.0), (10, 21.0), (15, 24.0), (20, 26.0), (40, 26.0)]
    readings = [Sample("L1", at(m), 5.0, battery_pct=b) for m, b in levels]
    (ep,) = fold(readings, ctx()).episodes["battery_low"]
    assert (ep.start, ep.end, ep.peak, ep.confirmed) == (us(5), us(20), 19.0, True)


PARIS = (48.85, 2.35)  # far off the AMS → Boston great circle


@pytest.mark.parametrize(
    ("path", "alarmed"),
    [
        ([PARIS, PARIS, PARIS, (52.31, 4.76)], True),  # 15 min outside ≥ 10 min route delay
        ([(52.31, 4.76), PARIS, (52.31, 4.76)], False),  # one outlier: recorded, not alarmed
    ],
)
def test_route_deviation(path: list[tuple[float, float]], alarmed: bool) -> None:
    readings = [Sample("L1", at(5 * i), 5.0, lat=lat, lon=lon) for i, (lat, lon) in enumerate(path)]
    result = advance(initial_state("L1", c := ctx()), readings, c)
    (exc,) = [e for e in result.closed if e.kind == "route_deviation"]
    assert exc.alarmed is alarmed and exc.peak is not None and exc.peak > 100
    assert ("route_deviation" in result.state.episodes) is alarmed


def test_waypoint_visits() -> None:
    inside = [Sample("L1", at(m), 5.0, lat=52.31, lon=4.76) for m in range(0, 61, 5)]
    away = Sample("L1", at(65), 5.0, lat=51.0, lon=3.0)
    state = fold([*inside, away], ctx())
    (visit,) = state.visits
    assert (visit.waypoint, visit.start, visit.end) == (0, us(0), us(65))
    assert state.visit is None


def test_state_round_trips_through_json() -> None:
    product = replace(FRIDGE, shock_limit_g=5.0, critical_max_c=15.0)
    readings = [
        Sample("L1", at(m), t, lat=52.31, lon=4.76, battery_pct=50.0 - m, light=m == 10,
                shock_g=float(m % 7))
        for m, t in [(0, 5.0), (5, 9.0), (10, 16.0), (15, 1.0), (20, 5.0)]
    ]
    state = fold(readings, ctx(product))
    assert state_from_json(state_to_json(state)) == state


def test_checkpoints_are_snapshots_every_n_readings() -> None:
    c = ctx(checkpoint_every=2)
    result = advance(initial_state("L1", c), series([(m, 5.0) for m in range(0, 25, 5)]), c)
    assert [cp.last_us for cp in result.checkpoints] == [us(5), us(15)]
    assert [cp.count for cp in result.checkpoints] == [2, 4]


def test_state_from_another_profile_is_refused() -> None:
    state = fold(series([(0, 5)]), ctx())
    other = ctx(ProductProfile(-80.0, -60.0, 3600.0))
    with pytest.raises(ValueError, match="replay"):
        advance(state, series([(5, 5)]), other)


HOURLY = 3 * 3600.0  # max gap of a logger reporting every hour


@pytest.mark.parametrize(("every", "max_gap_s"), [(15, 2700.0), (60, HOURLY)])
def test_hovering_is_one_episode_at_long_intervals(every: int, max_gap_s: float) -> None:
    # 8.1 / 7.9 around the 8 °C limit for 8 readings: the clear time is the max gap (3 intervals),
    # not a fixed 15 min, so one in-range reading between two warm ones ends nothing.
    hover = [(every * i, 8.1 if i % 2 == 0 else 7.9) for i in range(9)]
    c = ctx(max_gap_s=max_gap_s)
    (ep,) = fold(series(hover), c).episodes["temperature_high"]
    assert (ep.start, ep.end, ep.count, ep.confirmed) == (us(0), None, 5, False)
    last = every * 8
    back = [(last + k * every, 7.9) for k in (1, 2, 3, 4)]  # back in range from last + 1
    (ep,) = fold(series([*hover, *back[:3]]), c).episodes["temperature_high"]
    assert (ep.end, ep.confirmed) == (us(last + every), False)  # clear for 2 intervals: not yet
    (ep,) = fold(series([*hover, *back]), c).episodes["temperature_high"]
    assert (ep.end, ep.confirmed) == (us(last + every), True)  # for 3 intervals = the max gap
    later = fold(series([*hover, *back, (last + 5 * every, 8.1)]), c).episodes["temperature_high"]
    assert [e.start for e in later] == [us(0), us(last + 5 * every)]  # a new episode


def test_alarm_delay_spans_unknown_time_between_out_of_range_readings() -> None:
    # A 1-min logger (max gap 3 min), delay 30 min: out of range 0–10 and 55–65 min with nothing
    # in between. The excursion has lasted 30 min by the reading at 55 min: it alarms there, while
    # the budget counts known time only: 10 + 3 (held into the gap) + 11 min.
    c = ctx(replace(FRIDGE, alarm_delay_s=1800.0), max_gap_s=180.0)
    points = [(m, 9.0) for m in (*range(0, 11), *range(55, 66))] + [(66, 5.0)]
    state = fold(series(points), c)
    (ep,) = state.episodes["temperature_high"]
    assert (ep.start, ep.alarm_us, ep.end) == (us(0), us(55), us(66))
    assert state.out_us == (10 + 3 + 11) * 60 * 1_000_000
    assert state.unknown_us == 42 * 60 * 1_000_000
    # The reading at 55 min proves it by itself, before anything holds after it.
    (ep,) = fold(series(points[:12]), c).episodes["temperature_high"]
    assert (ep.alarm_us, ep.end) == (us(55), None)
    # Without the second stretch the first one (10 min + 3 held) never met the delay.
    assert "temperature_high" not in fold(series([*points[:11], (20, 5.0)]), c).episodes


def test_held_alarm_counts_the_held_value_across_a_gap() -> None:
    # Out of range at 0, then the next reading (back in range) 20 min later; max gap 15 min:
    # the excursion lasted until 15 min by rule 2, which meets a 10-min delay at 10 min.
    state = fold(series([(0, 9.0), (20, 5.0)]), ctx(DELAYED))
    (ep,) = state.episodes["temperature_high"]
    assert (ep.alarm_us, ep.end) == (us(10), us(20))


def test_critical_peak_is_the_farthest_beyond_the_limit_it_crosses() -> None:
    product = replace(FRIDGE, critical_min_c=-10.0, critical_max_c=15.0)
    state = fold(series([(0, -11.0), (5, -15.0), (10, -12.0), (15, 5.0)]), ctx(product))
    assert state.episodes["temperature_critical"][0].peak == -15.0
    # 16 °C is 1 °C beyond the high limit; −12 °C is 2 °C beyond the low one.
    state = fold(series([(0, 16.0), (5, -12.0), (10, 5.0)]), ctx(product))
    assert state.episodes["temperature_critical"][0].peak == -12.0
