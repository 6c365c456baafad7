"""The scenario library: loads, is deterministic, and its ground truth implies exactly its alerts.

The oracle below judges each scenario's simulated truth with deliberately simple rules (PRODUCT.md's
conditions, backfill semantics) — independent of the evaluation engine, so a scenario whose file
promises an alert its data cannot cause (or the reverse) fails here, before any end-to-end run.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from simulators.plan import Plan, build, messages
from simulators.route import distance_to_path_km
from simulators.scenario import ALERT_KINDS, library

REQUIRED = {"clean-2-8", "ln2-10-day", "customs-hold-at-risk", "tarmac-excursion", "lid-opened",
            "silent-burst", "duplicate-storm", "route-deviation", "dead-battery"}
LIB = library()
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
BATTERY_LOW_PCT = 20.0  # any threshold between 1 % and 70 % gives the same answers here


def test_the_library_has_the_required_scenarios():
    assert set(LIB) >= REQUIRED
    for sc in LIB.values():
        assert sc.alerts <= ALERT_KINDS


@pytest.mark.parametrize("name", sorted(LIB))
def test_scenarios_are_deterministic(name):
    a, b = build(LIB[name]), build(LIB[name])
    assert messages(a, T0, "x") == messages(b, T0, "x")
    assert a.trace == b.trace


def _temperature_kinds(plan: Plan) -> set[str]:
    p = plan.scenario.product
    kinds: set[str] = set()
    for lp in plan.loggers:
        gap = 3 * lp.spec.interval_s
        rs = sorted(lp.sent, key=lambda r: r.offset_s)
        out_s = 0.0
        run_start = None
        for r, nxt in zip(rs, rs[1:] + [None], strict=False):
            high, low = r.temp_c > p["temp_max_c"], r.temp_c < p["temp_min_c"]
            if p.get("critical_max_c") is not None and r.temp_c > p["critical_max_c"]:
                kinds.add("temperature_critical")
            if p.get("critical_min_c") is not None and r.temp_c < p["critical_min_c"]:
                kinds.add("temperature_critical")
            held = min(gap, (nxt.offset_s - r.offset_s) if nxt else 0.0)
            if high or low:
                out_s += held
                run_start = r.offset_s if run_start is None else run_start
                end = nxt.offset_s if nxt else r.offset_s
                if end - run_start >= p["alarm_delay_s"]:
                    kinds.add("temperature_high" if high else "temperature_low")
            else:
                run_start = None
        if out_s >= 0.5 * p["stability_budget_s"]:
            kinds.add("stability_budget")
    return kinds


def _dwell_and_hold_kinds(plan: Plan) -> set[str]:
    sc = plan.scenario
    kinds: set[str] = set()
    ev = {e.type: e.offset_s for e in plan.events}
    departed = ev.get("departed")
    end = min(ev.get("delivered", sc.anchor_s), sc.anchor_s)
    overrun = 0.0
    for seg in sc.route.segments:
        st = seg.step
        if st.is_move or departed is None or seg.start_s < departed or seg.start_s >= end:
            continue
        stayed = min(seg.end_s, end) - seg.start_s
        allowance = sc.waypoints[st.waypoint].dwell_allowance_h * 3600
        if stayed > allowance:
            kinds.add("dwell_exceeded")
            overrun += stayed - allowance
    if departed is not None and "delivered" not in ev:
        deadline = sc.qualified_hold_h * 3600
        arrival = departed + float(sc.lane["expected_transit_h"]) * 3600 + overrun
        if deadline - arrival < sc.safety_margin_h * 3600:
            kinds.add("hold_time_at_risk")
        if sc.anchor_s > deadline:
            kinds.add("hold_time_exceeded")
    return kinds


def _device_kinds(plan: Plan) -> set[str]:
    sc = plan.scenario
    kinds: set[str] = set()
    sent = [r for lp in plan.loggers for r in lp.sent]
    if sc.product.get("light_sensitive", True) and any(r.light for r in sent):
        kinds.add("light_exposure")
    limit = sc.product.get("shock_limit_g")
    if limit is not None and any((r.shock_g or 0.0) > limit for r in sent):
        kinds.add("shock")
    if any(r.battery_pct is not None and r.battery_pct < BATTERY_LOW_PCT for r in sent):
        kinds.add("battery_low")
    if any(r.lat is not None and distance_to_path_km(r.lat, r.lon, sc.waypoints) > float(
            sc.lane["corridor_km"]) for r in sent):
        kinds.add("route_deviation")
    return kinds


def _signal_kinds(plan: Plan) -> set[str]:
    """Back-filled history arrives at once: only silence in the live tail is seen as lost signal."""
    sc = plan.scenario
    if sc.tail_s <= 0:
        return set()
    delivered = next((e.offset_s for e in plan.events if e.type == "delivered"), None)
    for lp in plan.loggers:
        max_gap = sc.max_gap_s or 3 * lp.spec.interval_s
        sends = sorted({tx.send_s for tx in lp.transmissions})
        horizon = delivered if delivered is not None else sc.duration_s
        marks = [s for s in sends if s <= horizon] + [horizon]
        if any(b - a > max_gap and b > sc.anchor_s for a, b in zip(marks, marks[1:],
                                                                     strict=False)):
            return {"signal_lost"}
    return set()


@pytest.mark.parametrize("name", sorted(LIB))
def test_ground_truth_implies_exactly_the_declared_alerts(name):
    plan = build(LIB[name])
    implied = (_temperature_kinds(plan) | _dwell_and_hold_kinds(plan) | _device_kinds(plan)
               | _signal_kinds(plan))
    assert implied == set(LIB[name].alerts)


@pytest.mark.parametrize("name", sorted(LIB))
def test_device_times_stay_inside_the_shipment_window(name):
    plan = build(LIB[name])
    received = next((e.offset_s for e in plan.events if e.type == "received"), None)
    for lp in plan.loggers:
        for r in lp.readings:
            device = r.offset_s + lp.spec.skew_s
            assert device >= 0
            if received is not None:
                assert device < received


def test_ln2_lane_reads_its_nitrogen_level_and_uses_both_payload_formats():
    plan = build(LIB["ln2-10-day"])
    lp = plan.loggers[0]
    levels = [r.ln2_level_pct for r in lp.readings]
    assert levels[0] == pytest.approx(100.0, abs=0.5) and levels[-1] < levels[0]
    assert {tx.fmt for tx in lp.transmissions} == {"object", "senml"}
    assert any(tx.batch for tx in lp.transmissions)  # flight and customs hall: store-and-forward


def test_duplicate_storm_sends_every_reading_at_least_four_times():
    lp = build(LIB["duplicate-storm"]).loggers[0]
    counts: dict[float, int] = {}
    for tx in lp.transmissions:
        for r in tx.readings:
            counts[r.offset_s] = counts.get(r.offset_s, 0) + 1
    assert len(counts) == len(lp.readings) and min(counts.values()) >= 4
