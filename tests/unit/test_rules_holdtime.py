"""Rule 6: hold deadline, expected arrival pushed by dwell overruns, margin; stops at waypoints."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from alerts.rules import ShipmentEvent, ShipmentSpec
from alerts.rules.holdtime import hold_time, stops, timeline
from alerts.rules.state import Visit
from alerts.rules.timeutil import to_us
from tests.unit.rules_support import FRIDGE, LANE, T0


def h(hours: float) -> timedelta:
    return timedelta(hours=hours)


def spec(*events: tuple[str, float], hold_h: float = 96.0, departed: float | None = 0.0) -> ShipmentSpec:
    return ShipmentSpec(
        packed_at=T0 - h(2), qualified_hold_h=hold_h, product=FRIDGE, lane=LANE,
        max_gap_s=(("L1", 900.0),), departed_at=None if departed is None else T0 + h(departed),
        events=tuple(ShipmentEvent(t, T0 + h(x)) for t, x in events),
    )


def judge(s: ShipmentSpec, now_h: float, visits: tuple[Visit, ...] = ()) -> tuple[float, float]:
    """(hours from T0 to the expected arrival, margin in hours) at T0 + now_h."""
    now = T0 + h(now_h)
    tl = timeline(s)
    result = hold_time(s, tl, stops(s, tl, visits, now), now)
    return (result.expected_arrival - T0) / h(1), result.margin_h


@pytest.mark.parametrize(
    ("events", "now_h", "arrival_h", "margin_h"),
    [
        # Departed at T0, 30 h expected transit; deadline T0 − 2 h + 96 h = T0 + 94 h.
        ((), 1, 30, 64),
        # A 20 h customs hold at "BOS customs" (8 h allowance) pushes arrival by 12 h.
        ((("customs_hold", 10), ("customs_released", 30)), 31, 42, 52),
        # Still held after 15 h: 7 h over so far, and growing with the clock.
        ((("customs_hold", 10),), 25, 37, 57),
        # Inside the allowance nothing moves.
        ((("customs_hold", 10), ("customs_released", 17)), 20, 30, 64),
        # Overdue without news: it cannot arrive before now.
        ((), 40, 40, 54),
        # Delivered: the arrival is a fact.
        ((("delivered", 28),), 40, 28, 66),
    ],
)
def test_expected_arrival_and_margin(
    events: tuple[tuple[str, float], ...], now_h: float, arrival_h: float, margin_h: float
) -> None:
    assert judge(spec(*events), now_h) == pytest.approx((arrival_h, margin_h))


def test_not_departed_waits_count() -> None:
    assert judge(spec(departed=None), 5) == pytest.approx((35, 59))


def test_customs_without_a_customs_waypoint_has_no_allowance() -> None:
    lane = replace(LANE, waypoints=(LANE.waypoints[0],))  # only "AMS"
    s = replace(spec(("customs_hold", 10), ("customs_released", 14)), lane=lane)
    assert judge(s, 20) == pytest.approx((34, 60))


def test_customs_hold_belongs_to_the_waypoint_being_visited() -> None:
    # At AMS (6 h allowance) by positions from +9 h; customs hold +10 h → +22 h: 13 h at AMS.
    visit = Visit(0, to_us(T0 + h(9)), to_us(T0 + h(21.5)), to_us(T0 + h(22)))
    s = spec(("customs_hold", 10), ("customs_released", 22))
    (stop,) = stops(s, timeline(s), [visit], T0 + h(23))
    assert (stop.name, stop.customs, stop.dwell_s(T0) / 3600) == ("AMS", True, 13)
    assert judge(s, 23, (visit,)) == pytest.approx((37, 57))


def test_position_visits_before_departure_do_not_count() -> None:
    visit = Visit(0, to_us(T0 - h(10)), to_us(T0 - h(1)), to_us(T0 - h(0.5)))
    s = spec()
    assert stops(s, timeline(s), [visit], T0 + h(1)) == ()


def test_ongoing_visit_is_a_growing_stop() -> None:
    visit = Visit(1, to_us(T0 + h(20)), to_us(T0 + h(29)))  # at Boston customs, no exit yet
    assert judge(spec(), 30, (visit,)) == pytest.approx((32, 62))
    s = spec()
    (stop,) = stops(s, timeline(s), [visit], T0 + h(30))
    assert stop.end is None and stop.overrun_s(T0 + h(30)) == 2 * 3600


def test_deadline_and_checkpoints() -> None:
    s = spec(("customs_hold", 10))
    now = T0 + h(12)
    tl = timeline(s)
    result = hold_time(s, tl, stops(s, tl, (), now), now)
    assert result.deadline == T0 + h(94)
    assert T0 + h(18) in result.checkpoints  # the hold starts to overrun its 8 h then
    assert result.in_transit and not result.now_dependent
