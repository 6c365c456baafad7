"""Shipment-level judgement: several loggers (worst wins), signal lost, dwell, hold time, budget."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from alerts.rules import Memo, ProductProfile, Sample, ShipmentEvent, ShipmentSpec, evaluate
from alerts.rules.evaluate import Evaluation, at_risk
from tests.unit.rules_support import FRIDGE, LANE, T0, at, ctx, fold, series


def h(hours: float) -> timedelta:
    return timedelta(hours=hours)


def shipment(product: ProductProfile = FRIDGE, loggers: tuple[str, ...] = ("L1",),
             **over: object) -> ShipmentSpec:
    base = ShipmentSpec(
        packed_at=T0, qualified_hold_h=96.0, product=product, lane=LANE,
        max_gap_s=tuple((lid, 900.0) for lid in loggers), departed_at=T0,
    )
    return replace(base, **over)  # type: ignore[arg-type]


def judge(s: ShipmentSpec, readings: list[Sample], now: datetime,
          received: dict[str, datetime | None] | None = None, memo: Memo | None = None) -> Evaluation:
    states = {}
    for lid, _gap in s.max_gap_s:
        mine = [r for r in readings if r.logger_id == lid]
        states[lid] = fold(mine, s.context(lid), lid)
    if received is None:
        received = {lid: max((r.ts for r in readings if r.logger_id == lid), default=None)
                    for lid, _ in s.max_gap_s}
    return evaluate(s, states, received, memo or Memo(), now)


def test_several_loggers_each_judged_alone_the_shipment_takes_the_worst() -> None:
    s = shipment(loggers=("L1", "L2"))
    l1 = series([(0, 5.0), (5, 5.0), (10, 5.0), (15, 5.0)], "L1")
    # L2 warm for 10 min; interleaving with L1 must not cut L2's holds short.
    l2 = series([(1, 5.0), (6, 9.0), (11, 9.5), (16, 5.0)], "L2")
    ev = judge(s, l1 + l2, at(20))
    assert ev.summary.time_out_of_range_s == 600 and ev.summary.stability_budget_used_s == 600
    assert (ev.summary.min_c, ev.summary.max_c, ev.summary.reading_count) == (5.0, 9.5, 8)
    assert ev.summary.last_reading_at == at(16) and ev.summary.last_temp_c == 5.0
    (c,) = ev.conditions["temperature_high"]
    assert c.loggers == ("L2",) and c.start == at(6) and c.details["peak_c"] == 9.5
    assert ev.summary.mkt_c is not None and 5.0 < ev.summary.mkt_c < 9.5


def test_episodes_of_two_loggers_overlapping_are_one_condition() -> None:
    s = shipment(loggers=("L1", "L2"))
    l1 = series([(0, 9.0), (5, 5.0)], "L1")
    l2 = series([(3, 9.0), (8, 5.0)], "L2")
    (c,) = judge(s, l1 + l2, at(10)).conditions["temperature_high"]
    assert (c.start, c.end, c.count, c.loggers) == (at(0), at(8), 2, ("L1", "L2"))


def test_mkt_is_null_for_frozen_profiles() -> None:
    frozen = ProductProfile(-80.0, -60.0, 3600.0)
    ev = judge(shipment(frozen), series([(0, -70.0), (5, -65.0), (10, -70.0)]), at(15))
    assert ev.summary.mkt_c is None
    equal = series([(0, 5.0), (10, 15.0), (20, 5.0)])
    assert judge(shipment(), equal, at(20)).summary.mkt_c == pytest.approx(11.387, abs=0.001)
    # Five minutes later the latest reading has held 5 min too (rule 2): 15 min at 5 °C, 10 at 15.
    assert judge(shipment(), equal, at(25)).summary.mkt_c == pytest.approx(10.4395, abs=0.001)


def test_signal_lost_by_receive_time_while_in_transit() -> None:
    s = shipment()
    readings = series([(0, 5.0), (60, 5.0)])
    quiet = judge(s, readings, at(74))
    assert quiet.conditions["signal_lost"] == ()
    assert quiet.next_check_at <= at(75) + timedelta(microseconds=1)
    lost = judge(s, readings, at(75, ) + timedelta(seconds=1))
    (c,) = lost.conditions["signal_lost"]
    assert c.start == at(75) and c.loggers == ("L1",)
    # Late data received just now (about old device times) means the signal is back.
    back = judge(s, readings, at(80), received={"L1": at(79)})
    assert back.conditions["signal_lost"] == ()
    delivered = replace(s, events=(ShipmentEvent("delivered", at(61)),))
    assert judge(delivered, readings, at(200)).conditions["signal_lost"] == ()


def test_signal_lost_counts_from_departure_when_nothing_came() -> None:
    s = shipment(departed_at=at(30))
    (c,) = judge(s, [], at(46)).conditions["signal_lost"]
    assert c.start == at(45)


def test_dwell_exceeded_from_positions_and_arrival_pushed() -> None:
    boston = [Sample("L1", T0 + h(20) + timedelta(minutes=m), 5.0, lat=42.36, lon=-71.01)
              for m in range(0, 9 * 60 + 1, 5)]  # 9 h at "BOS customs" (8 h allowance)
    ev = judge(shipment(), boston, T0 + h(29))
    (c,) = ev.conditions["dwell_exceeded"]
    assert c.start == T0 + h(28) and c.end is None and not c.cleared
    assert c.details["waypoint"] == "BOS customs"
    assert ev.summary.expected_arrival == T0 + h(31)  # 30 h + 1 h overrun
    left = [*boston, Sample("L1", T0 + h(29.5), 5.0, lat=42.0, lon=-70.0)]
    (c,) = judge(shipment(), left, T0 + h(30)).conditions["dwell_exceeded"]
    assert c.cleared and c.end == T0 + h(29.25)  # last seen inside + max gap


@pytest.mark.parametrize(
    ("hold_h", "now_h", "risk", "exceeded"),
    [(96, 1, False, False),  # margin 66 h
     (60, 1, False, False),  # margin 30 h ≥ 24 h
     (50, 1, True, False),  # margin 20 h < 24 h: act now
     (40, 41, False, True)],  # deadline passed before delivery
)
def test_hold_time_conditions(hold_h: float, now_h: float, risk: bool, exceeded: bool) -> None:
    ev = judge(shipment(qualified_hold_h=hold_h), [], T0 + h(now_h), received={"L1": T0 + h(now_h)})
    assert bool(ev.conditions["hold_time_at_risk"]) is risk
    assert bool(ev.conditions["hold_time_exceeded"]) is exceeded
    if exceeded:
        assert ev.conditions["hold_time_exceeded"][0].start == T0 + h(hold_h)


def test_hold_time_at_risk_has_hysteresis_and_a_stable_since() -> None:
    s = shipment(qualified_hold_h=54.5)  # margin 24.5 h: above the 24 h safety margin
    rx = {"L1": T0 + h(1)}
    assert judge(s, [], T0 + h(1), rx).conditions["hold_time_at_risk"] == ()
    memo = Memo({"hold_time_at_risk": T0})  # it was at risk: clears only above 25 h
    ev = judge(s, [], T0 + h(1), rx, memo)
    (c,) = ev.conditions["hold_time_at_risk"]
    assert c.start == T0 and ev.memo.since["hold_time_at_risk"] == T0
    ev = judge(replace(s, qualified_hold_h=56), [], T0 + h(1), rx, memo)
    assert ev.conditions["hold_time_at_risk"] == () and ev.memo.since == {}


def test_late_delivery_is_hold_time_exceeded() -> None:
    s = shipment(qualified_hold_h=30, events=(ShipmentEvent("delivered", T0 + h(31)),))
    (c,) = judge(s, [], T0 + h(40), received={"L1": T0 + h(31)}).conditions["hold_time_exceeded"]
    assert c.start == T0 + h(30)


def test_budget_condition_escalates_through_levels() -> None:
    product = replace(FRIDGE, stability_budget_s=1200.0)
    s = shipment(product)
    ev = judge(s, series([(0, 9), (5, 9), (10, 5)]), at(11))  # 600 s = 50 %
    (c,) = ev.conditions["stability_budget"]
    assert (c.severity, c.start, c.details["level_pct"]) == ("info", at(10), 50)
    ev = judge(s, series([(0, 9), (5, 9), (10, 9), (15, 9), (20, 9)]), at(21))
    (c,) = ev.conditions["stability_budget"]
    assert (c.severity, c.start, c.details["level_pct"]) == ("critical", at(10), 100)
    assert ev.summary.stability_budget_left_s == 0


def test_projected_breach_from_a_warming_trend() -> None:
    warming = series([(m, 5.0 + 0.05 * m) for m in range(0, 31, 5)])  # +3 °C/h from 5 °C
    ev = judge(shipment(), warming, at(31))
    # 6.5 °C at 30 min; 8 °C is 1.5 °C away: 30 min later.
    assert ev.summary.projected_breach_at == at(60)
    assert at_risk(ev.summary, 24.0, []) is True
    flat = judge(shipment(), series([(m, 5.0) for m in range(0, 31, 5)]), at(31))
    assert flat.summary.projected_breach_at is None
    assert at_risk(flat.summary, 24.0, []) is False
    assert at_risk(flat.summary, 24.0, ["warning"]) is True


def test_next_check_is_bounded_by_the_sweep_interval() -> None:
    ev = judge(shipment(), series([(0, 5.0)]), at(1))
    assert at(1) < ev.next_check_at <= at(1) + timedelta(seconds=300)


def test_stale_state_of_a_logger_no_longer_on_the_shipment_is_ignored() -> None:
    s = shipment(loggers=("L1",))
    other = fold(series([(0, 30.0), (5, 30.0)], "L9"), ctx(), "L9")
    ev = evaluate(s, {"L9": other}, {}, Memo(), at(10))
    assert ev.summary.reading_count == 0 and ev.conditions["temperature_high"] == ()


def test_routine_recheck_is_spread_by_phase() -> None:
    s = shipment()
    readings = series([(0, 5.0)])
    early = judge(s, readings, at(1))
    evaluations = [evaluate(s, {"L1": fold(readings, s.context("L1"))}, {"L1": at(0)}, Memo(),
                            at(1), phase=p) for p in (0.0, 0.5, 0.999)]
    assert [e.next_check_at - at(1) for e in evaluations] == [
        timedelta(seconds=300), timedelta(seconds=225), timedelta(seconds=150.15)]
    assert early.next_check_at == evaluations[0].next_check_at


def test_a_silent_loggers_out_of_range_value_alarms_on_the_wall_clock() -> None:
    # Delay 10 min; 10 °C at 5 min, then silence. Rule 2: the value holds up to min(now, 5 +
    # the 15-min max gap), so the excursion alarms at 15 min, before signal_lost (at 20 min).
    s = shipment(replace(FRIDGE, alarm_delay_s=600.0, stability_budget_s=600.0))
    readings = series([(0, 5.0), (5, 10.0)])
    early = judge(s, readings, at(14))
    assert early.conditions["temperature_high"] == ()
    assert early.next_check_at == at(15)  # the sweep comes back when the delay is met
    ev = judge(s, readings, at(15))
    (c,) = ev.conditions["temperature_high"]
    assert (c.start, c.details["alarm_at"], c.retroactive) == (at(5), at(15).isoformat(), False)
    assert ev.summary.time_out_of_range_s == 600 and ev.summary.stability_budget_left_s == 0
    assert ev.conditions["stability_budget"][0].severity == "critical"
    late = judge(s, readings, at(60))
    assert late.summary.time_out_of_range_s == 900 and late.summary.time_unknown_s == 0
    assert [k for k, v in late.conditions.items() if v] == [
        "temperature_high", "stability_budget", "signal_lost"]


def test_the_hold_stops_at_delivery() -> None:
    s = shipment(replace(FRIDGE, alarm_delay_s=600.0),
                 events=(ShipmentEvent("delivered", at(10)),))
    ev = judge(s, series([(0, 5.0), (5, 10.0)]), at(60))
    assert ev.conditions["temperature_high"] == () and ev.summary.time_out_of_range_s == 300


@pytest.mark.parametrize(("temps", "peak"), [((-15.0, -11.0), -15.0), ((-11.0, -15.0), -15.0)])
def test_a_critical_peak_is_the_worst_across_loggers(temps: tuple[float, float], peak: float) -> None:
    s = shipment(ProductProfile(-8.0, 8.0, 86400.0, critical_min_c=-10.0), loggers=("L1", "L2"))
    readings = [*series([(0, temps[0])], "L1"), *series([(0, temps[1])], "L2")]
    ev = judge(s, readings, at(1))
    (c,) = ev.conditions["temperature_critical"]
    assert (c.details["peak_c"], c.loggers) == (peak, ("L1", "L2"))
    assert ev.conditions["temperature_low"][0].details["peak_c"] == peak


def test_hold_time_at_risk_turns_critical_when_the_lane_can_no_longer_make_it() -> None:
    # 40 h hold, 30 h lane: margin 10 h (a warning). A customs hold from 2 h, with no
    # allowance, pushes the expected arrival later hour by hour: margin 0 at 12 h.
    s = shipment(qualified_hold_h=40.0, events=(ShipmentEvent("customs_hold", T0 + h(2)),),
                 lane=replace(LANE, waypoints=()))
    rx = {"L1": T0 + h(11)}
    ev = judge(s, [], T0 + h(11), rx)
    (c,) = ev.conditions["hold_time_at_risk"]
    assert (c.severity, ev.summary.margin_h) == ("warning", 1.0)
    soon = judge(s, [], T0 + h(11.96), rx)  # 2.4 min left: sooner than the routine re-check
    assert soon.conditions["hold_time_at_risk"][0].severity == "warning"
    assert soon.next_check_at == T0 + h(12)  # when the margin reaches zero
    (c,) = judge(s, [], T0 + h(12), rx).conditions["hold_time_at_risk"]
    assert c.severity == "critical"
    (c,) = judge(s, [], T0 + h(39.9), rx).conditions["hold_time_at_risk"]
    assert c.severity == "critical"  # 28 h short, still before the deadline
    ev = judge(s, [], T0 + h(40), rx)
    assert ev.conditions["hold_time_at_risk"] == ()
    assert ev.conditions["hold_time_exceeded"][0].severity == "critical"
