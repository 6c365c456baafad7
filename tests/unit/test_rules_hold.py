"""Rule 2 by the wall clock: a logger's latest reading holds up to min(now, its time + max gap)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from alerts.rules.advance import hold_due, hold_to
from alerts.rules.state import LoggerState
from alerts.rules.timeutil import to_us
from tests.unit.rules_support import FRIDGE, at, ctx, fold, series

SILENT = replace(FRIDGE, alarm_delay_s=600.0, stability_budget_s=600.0)
C = ctx(SILENT)  # max gap 15 min


def us(minutes: float) -> int:
    return to_us(at(minutes))


def held(state: LoggerState, now_min: float) -> LoggerState:
    until = min(us(now_min), state.last_us + int(C.max_gap_s * 1e6))  # type: ignore[operator]
    return hold_to(state, C, until, us(now_min))


def silent() -> LoggerState:
    """In range at 0, 10 °C at 5 min, then nothing."""
    return fold(series([(0, 5.0), (5, 10.0)]), C)


def test_a_silent_loggers_last_value_alarms_once_it_has_lasted_the_delay() -> None:
    state = silent()
    assert "temperature_high" not in held(state, 14.99).episodes
    (ep,) = held(state, 15).episodes["temperature_high"]
    assert (ep.start, ep.alarm_us, ep.last_us, ep.late) == (us(5), us(15), us(15), False)
    assert held(state, 15).out_us == 600_000_000


def test_the_hold_stops_at_the_max_gap_and_the_rest_is_unknown() -> None:
    s = held(silent(), 120)
    assert s.out_us == 900_000_000 and s.unknown_us == 0  # 5 → 20 min, then nothing counts
    assert s.episodes["temperature_high"][0].last_us == us(20)
    assert s.last_us == us(5) and s.count == 2  # a provisional view: no reading was added


def test_the_budget_is_used_by_the_held_value_too() -> None:
    crossings = {c.level: c.at_us for c in held(silent(), 30).crossings}
    assert crossings == {50: us(10), 80: us(13), 100: us(15)}


def test_an_alarm_learnt_only_after_the_max_gap_is_retroactive() -> None:
    (ep,) = held(silent(), 31).episodes["temperature_high"]  # evaluated 16 min after 15 min
    assert ep.late is True


def test_a_delay_longer_than_the_max_gap_is_not_met_by_holding() -> None:
    c = ctx(replace(SILENT, alarm_delay_s=1800.0, stability_budget_s=86400.0))
    state = fold(series([(0, 10.0)]), c)
    assert "temperature_high" not in hold_to(state, c, us(15), us(60)).episodes
    assert hold_due(state, c) == ()  # nothing the hold can change


def test_an_episode_clears_by_the_held_in_range_value() -> None:
    # An hourly logger (max gap 3 h, clear time 3 h) back in range at 60 min, then silent.
    c = ctx(max_gap_s=3 * 3600.0)
    state = fold(series([(0, 9.0), (60, 5.0)]), c)
    ep_before = hold_to(state, c, us(60 + 179), us(60 + 179)).episodes["temperature_high"][0]
    assert not ep_before.confirmed
    ep = hold_to(state, c, us(240), us(240)).episodes["temperature_high"][0]
    assert ep.confirmed and ep.end == us(60)


def test_due_times_are_alarm_budget_levels_and_clear_within_the_hold() -> None:
    assert hold_due(silent(), C) == (us(10), us(13), us(15))
    c = ctx(max_gap_s=3 * 3600.0)
    back = fold(series([(0, 9.0), (60, 5.0)]), c)
    assert hold_due(back, c) == (us(240),)  # clear for the clear time (= the max gap)
    assert hold_due(fold(series([(0, 9.0), (5, 5.0)]), ctx()), ctx()) == (us(20),)
    assert hold_due(fold(series([(0, 9.0), (5, 5.0)]), ctx(max_gap_s=300.0)),
                    ctx(max_gap_s=300.0)) == ()  # 15 min clear time > 5 min hold: by readings
    assert hold_due(fold([], c), c) == ()


def test_holding_before_the_latest_reading_changes_nothing() -> None:
    state = silent()
    assert hold_to(state, C, us(5), us(5)) is state
    assert held(state, 5 + 1 / 60).held_us == state.held_us + int(timedelta(seconds=1) / timedelta(
        microseconds=1))
