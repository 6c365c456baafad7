"""Rule 6's contingency events: `recharged` restarts the hold clock, `rerouted` changes the lane
from its time on (expected arrival, waypoints and corridor), the old lane judging what came before."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.rules import (
    AlertView,
    LaneSpec,
    Memo,
    Sample,
    ShipmentEvent,
    ShipmentSpec,
    Waypoint,
    advance,
    evaluate,
    initial_state,
    reconcile,
)
from alerts.rules.holdtime import hold_time, stops, timeline
from alerts.rules.legs import Legs
from alerts.rules.model import Leg
from alerts.rules.state import Visit
from alerts.rules.timeutil import to_us
from tests.unit.rules_support import FRIDGE, LANE, T0, at, ctx, fold

FRA = Waypoint("FRA hub", 50.03, 8.57, 5.0, 4.0)
FRA_CUSTOMS = Waypoint("FRA customs", 50.07, 8.49, 2.0, 4.0)
ALT = LaneSpec(20.0, 30.0, 100.0, (FRA, FRA_CUSTOMS, Waypoint("BOS", 42.36, -71.01, 5.0, 2.0)))
AMS_POS = (52.31, 4.76)
FRA_POS = (50.03, 8.57)  # ≈ 200 km off the AMS → BOS great circle, on the ALT lane


def h(hours: float) -> timedelta:
    return timedelta(hours=hours)


def ev(kind: str, hours: float, lane: LaneSpec | None = None) -> ShipmentEvent:
    return ShipmentEvent(kind, T0 + h(hours), lane)


def spec(*events: ShipmentEvent, hold_h: float = 96.0, departed: float | None = 0.0,
         **over: object) -> ShipmentSpec:
    base = ShipmentSpec(
        packed_at=T0 - h(2), qualified_hold_h=hold_h, product=FRIDGE, lane=LANE,
        max_gap_s=(("L1", 900.0),), departed_at=None if departed is None else T0 + h(departed),
        events=events,
    )
    return replace(base, **over)  # type: ignore[arg-type]


def clock(s: ShipmentSpec, now_h: float, visits: tuple[Visit, ...] = ()) -> tuple[float, float, float]:
    """(deadline, expected arrival) in hours from T0, and the margin, at T0 + now_h."""
    now = T0 + h(now_h)
    tl = timeline(s)
    r = hold_time(s, tl, stops(s, tl, visits, now), now)
    return (r.deadline - T0) / h(1), (r.expected_arrival - T0) / h(1), r.margin_h


# -- recharged -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("events", "now_h", "deadline_h", "arrival_h"),
    [
        # Packed at −2 h with a 96 h hold: deadline +94 h; transit 30 h.
        ((), 1, 94, 30),
        # Re-iced at +20 h: the clock restarts there, deadline +116 h.
        ((ev("recharged", 20),), 21, 116, 30),
        # Twice: the last charge counts.
        ((ev("recharged", 20), ev("recharged", 50)), 51, 146, 51),
        # Before departure (the departure slipped; re-iced at the origin).
        ((ev("recharged", -1),), 1, 95, 30),
    ],
)
def test_a_recharge_restarts_the_hold_clock(
    events: tuple[ShipmentEvent, ...], now_h: float, deadline_h: float, arrival_h: float
) -> None:
    deadline, arrival, margin = clock(spec(*events), now_h)
    assert (deadline, arrival, margin) == pytest.approx((deadline_h, arrival_h, deadline_h - arrival_h))


def _judge(s: ShipmentSpec, now_h: float, memo: Memo | None = None):  # type: ignore[no-untyped-def]
    states = {"L1": fold([], s.context("L1"), "L1")}
    return evaluate(s, states, {"L1": T0 + h(now_h)}, memo or Memo(), T0 + h(now_h))


def test_hold_time_at_risk_clears_once_a_recharge_gives_the_margin_back() -> None:
    # 40 h hold packed at −2 h: deadline +38 h; 30 h transit + a 20 h customs hold (8 h allowed)
    # → arrival +42 h: the lane can no longer make it (critical, before the deadline).
    held = (ev("customs_hold", 10), ev("customs_released", 30))
    before = _judge(spec(*held, hold_h=40.0), 31)
    (risk,) = before.conditions["hold_time_at_risk"]
    assert (before.summary.margin_h, risk.severity) == (pytest.approx(-4.0), "critical")
    # Re-iced in the customs depot at +29 h: deadline +69 h, margin 27 h > 24 h + 1 h.
    after = _judge(spec(*held, ev("recharged", 29), hold_h=40.0), 31, before.memo)
    assert after.summary.hold_deadline == T0 + h(69)
    assert after.summary.margin_h == pytest.approx(27.0)
    assert after.conditions["hold_time_at_risk"] == ()
    assert after.conditions["hold_time_exceeded"] == ()
    alert = AlertView("a1", "hold_time_at_risk", "critical", "open", risk.start, T0 + h(31))
    plan = reconcile(after.conditions, [alert], T0 + h(31), clear_s=900, escalation_after_s=900)
    assert [(type(t).__name__, t.kind) for t in plan.transitions if t.kind.startswith("hold")] == [
        ("Resolve", "hold_time_at_risk")]


def test_a_margin_just_inside_the_hysteresis_keeps_the_alert() -> None:
    held = (ev("customs_hold", 10), ev("customs_released", 30))
    before = _judge(spec(*held, hold_h=40.0), 31)
    # Re-iced at +26.5 h: margin 24.5 h, above the safety margin but not by the hour it needs.
    after = _judge(spec(*held, ev("recharged", 26.5), hold_h=40.0), 31, before.memo)
    (risk,) = after.conditions["hold_time_at_risk"]
    assert after.summary.margin_h == pytest.approx(24.5) and risk.severity == "warning"


def test_a_recharge_after_the_deadline_does_not_undo_the_run_out() -> None:
    # Deadline +38 h passed; re-iced at +40 h: a new clock, but the product sat 2 h past its hold.
    s = spec(ev("recharged", 40), hold_h=40.0)
    ev_ = _judge(s, 41)
    (exceeded,) = ev_.conditions["hold_time_exceeded"]
    assert exceeded.start == T0 + h(38)
    assert exceeded.details["hold_ran_out_at"] == [(T0 + h(38)).isoformat()]
    assert ev_.summary.hold_deadline == T0 + h(80)
    alert = AlertView("x", "hold_time_exceeded", "critical", "open", T0 + h(38), T0 + h(38))
    plan = reconcile(ev_.conditions, [alert], T0 + h(41), clear_s=900, escalation_after_s=900)
    assert not [t for t in plan.transitions if t.alert_id == "x" and type(t).__name__ == "Resolve"]


def test_a_recharge_in_time_means_no_run_out() -> None:
    s = spec(ev("recharged", 37.5), hold_h=40.0)
    assert _judge(s, 70).conditions["hold_time_exceeded"] == ()
    assert [c.start for c in _judge(s, 78).conditions["hold_time_exceeded"]] == [T0 + h(77.5)]


# -- rerouted ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("events", "now_h", "arrival_h"),
    [
        # Rerouted at +5 h onto a 20 h lane: from then on, +25 h.
        ((ev("rerouted", 5, ALT),), 6, 25),
        # A 20 h customs hold (12 h overrun) on the old lane is history once rerouted.
        ((ev("customs_hold", 10), ev("customs_released", 30), ev("rerouted", 31, ALT)), 32, 51),
        # A hold on the new lane at its customs waypoint (4 h allowed): 6 h over.
        ((ev("rerouted", 31, ALT), ev("customs_hold", 35), ev("customs_released", 45)), 46, 57),
    ],
)
def test_a_reroute_puts_the_shipment_on_the_new_lane_from_its_time(
    events: tuple[ShipmentEvent, ...], now_h: float, arrival_h: float
) -> None:
    _, arrival, _ = clock(spec(*events), now_h)
    assert arrival == pytest.approx(arrival_h)


def test_a_reroute_before_departure_changes_the_transit_it_will_take() -> None:
    assert clock(spec(ev("rerouted", 1, ALT), departed=None), 5)[1] == pytest.approx(25)
    # Departed after the reroute: from the departure.
    assert clock(spec(ev("rerouted", 1, ALT), departed=3.0), 5)[1] == pytest.approx(23)


def test_a_customs_hold_across_a_reroute_is_split_between_the_lanes() -> None:
    s = spec(ev("customs_hold", 10), ev("rerouted", 20, ALT), ev("customs_released", 26))
    now = T0 + h(27)
    tl = timeline(s)
    got = [(x.name, x.leg, (x.start - T0) / h(1), (x.end - T0) / h(1) if x.end else None,
            x.allowance_s / 3600) for x in stops(s, tl, (), now)]
    assert got == [("BOS customs", 0, 10, 20, 8), ("FRA customs", 1, 20, 26, 4)]
    # Only the new lane's 2 h overrun pushes the arrival: 20 + 20 + 2.
    assert clock(s, 27)[1] == pytest.approx(42)


def test_a_stay_on_the_old_lane_ends_at_the_reroute() -> None:
    reroute = T0 + timedelta(minutes=95)
    c = replace(ctx(), reroutes=(Leg(reroute, ALT),))
    rs = [Sample("L1", at(m), 5.0, lat=AMS_POS[0], lon=AMS_POS[1]) for m in (0, 30, 60, 90, 120)]
    state = fold(rs, c)
    assert [(v.waypoint, v.start, v.end) for v in state.visits] == [(0, to_us(at(0)), to_us(reroute))]
    assert state.visit is None  # AMS is no waypoint of the new lane
    fra = [Sample("L1", at(m), 5.0, lat=FRA_POS[0], lon=FRA_POS[1]) for m in (150, 180)]
    state = advance(state, fra, c).state
    assert state.visit is not None and state.visit.waypoint == 2  # FRA hub, numbered after LANE's


def test_the_corridor_in_force_judges_each_position() -> None:
    reroute = T0 + timedelta(minutes=30)
    c = replace(ctx(), reroutes=(Leg(reroute, ALT),))
    at_fra = [Sample("L1", at(m), 5.0, lat=FRA_POS[0], lon=FRA_POS[1]) for m in range(0, 61, 5)]
    # Off the old lane until the reroute (an alarm after 10 min), inside the new one after it.
    result = advance(initial_state("L1", c), at_fra, c)
    (exc,) = result.closed
    assert (exc.kind, exc.start_us, exc.end_us, exc.alarmed) == (
        "route_deviation", to_us(at(0)), to_us(at(30)), True)
    assert "route_deviation" not in result.state.runs
    # Without the reroute it would still be going on.
    plain = fold(at_fra, ctx())
    assert "route_deviation" in plain.runs


def test_the_old_lanes_part_of_the_track_stays_judged_by_the_old_lane() -> None:
    # On the old lane (AMS) before the reroute: no deviation, although AMS is far off ALT.
    c = replace(ctx(), reroutes=(Leg(T0 + h(2), ALT),))
    rs = [Sample("L1", at(m), 5.0, lat=AMS_POS[0], lon=AMS_POS[1]) for m in range(0, 120, 10)]
    assert fold(rs, c).episodes.get("route_deviation", ()) == ()
    late = [Sample("L1", at(m), 5.0, lat=AMS_POS[0], lon=AMS_POS[1]) for m in range(120, 180, 10)]
    after = advance(fold(rs, c), late, c).state
    assert [e.start for e in after.episodes["route_deviation"]] == [to_us(at(120))]


def test_reroutes_change_the_fingerprint_only_when_there_are_some() -> None:
    plain = ctx()
    assert replace(plain, reroutes=()).fingerprint() == plain.fingerprint()
    assert replace(plain, reroutes=(Leg(T0, ALT),)).fingerprint() != plain.fingerprint()
    with pytest.raises(ValueError, match="carries its new lane"):
        ShipmentEvent("rerouted", T0)
    with pytest.raises(ValueError, match="increasing"):
        replace(plain, reroutes=(Leg(T0 + h(1), ALT), Leg(T0, LANE)))


# -- properties ----------------------------------------------------------------------------------

PROPS = settings(max_examples=150, deadline=None, derandomize=True)


@PROPS
@given(st.lists(st.integers(-2, 200), max_size=5), st.integers(0, 300),
       st.sampled_from([None, 60, 150]))
def test_deadline_and_run_outs_follow_the_charges(
    recharges: list[int], now_h: int, delivered_h: int | None
) -> None:
    now_h = max(now_h, delivered_h or 0)
    times = sorted({-2, *recharges})
    if delivered_h is not None:
        times = [t for t in times if t <= delivered_h]
    s = spec(*(ev("recharged", t) for t in times if t != -2), hold_h=40.0,
             **({"delivered_at": T0 + h(delivered_h)} if delivered_h is not None else {}))
    now = T0 + h(now_h)
    tl = timeline(s)
    r = hold_time(s, tl, stops(s, tl, (), now), now)
    assert r.deadline == T0 + h(times[-1] + 40)
    expect = [T0 + h(t + 40) for t, nxt in zip(times, [*times[1:], None], strict=True)
              if (nxt is not None and nxt >= t + 40)
              or (nxt is None and delivered_h is not None and delivered_h > t + 40)
              or (nxt is None and delivered_h is None and now_h >= t + 40)]
    assert list(r.breached) == expect
    # One more recharge later on never brings the deadline forward nor hides a run-out.
    if delivered_h is None:
        more = replace(s, events=(*s.events, ev("recharged", max(now_h, times[-1]))))
        tl2 = timeline(more)
        r2 = hold_time(more, tl2, stops(more, tl2, (), now), now)
        assert r2.deadline >= r.deadline and set(r.breached) <= set(r2.breached)


PLACES = st.sampled_from([AMS_POS, FRA_POS, (42.36, -71.01), (50.0, -20.0), (50.07, 8.49)])


@PROPS
@given(st.lists(st.tuples(st.integers(0, 600), PLACES), min_size=1, max_size=30,
                unique_by=lambda p: p[0]),
       st.integers(0, 600))
def test_before_the_reroute_the_record_is_judged_as_if_there_was_none(
    points: list[tuple[int, tuple[float, float]]], reroute_min: int
) -> None:
    rs = [Sample("L1", at(m), 5.0, lat=p[0], lon=p[1]) for m, p in sorted(points)]
    rerouted = replace(ctx(), reroutes=(Leg(at(reroute_min), ALT),))
    before = [r for r in rs if r.ts < at(reroute_min)]
    a, b = fold(before, rerouted), fold(before, ctx())
    assert replace(a, fingerprint="") == replace(b, fingerprint="")
    # From the reroute on, every stay is at a waypoint of the new lane.
    whole = fold(rs, rerouted)
    legs = Legs.of(LANE, rerouted.reroutes)
    for v in (*whole.visits, *([whole.visit] if whole.visit else ())):
        leg, _ = legs.waypoint(v.waypoint)
        assert leg.holds(v.start) and (v.end is None or v.end <= (leg.end_us or v.end))


def test_legs_number_waypoints_across_lanes() -> None:
    legs = Legs.of(LANE, (Leg(T0, ALT),))
    assert [(leg.offset, leg.start) for leg in legs.legs] == [(0, None), (2, T0)]
    assert legs.waypoint(3)[1] == FRA_CUSTOMS and legs.waypoint(1)[0].index == 0
    assert legs.at(to_us(T0) - 1).index == 0 and legs.at(to_us(T0)).index == 1
    assert isinstance(legs.current.start, datetime)
