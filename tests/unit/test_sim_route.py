"""Route model: positions along waypoints and legs, dwell, coverage, diversions off the corridor."""

from __future__ import annotations

import pytest

from simulators.route import Route, Step, Waypoint, distance_to_path_km, haversine_km

A = Waypoint("A", 50.0, 8.0, 2.0, 4.0)
B = Waypoint("B", 50.0, 9.0, 2.0, 4.0)
C = Waypoint("C", 51.0, 9.0, 2.0, 4.0)
H = 3600.0


def route(*steps: Step) -> Route:
    return Route.build((A, B, C), steps)


def test_positions_follow_dwell_move_and_flight():
    r = route(
        Step("dwell", 2 * H, "room", 0),
        Step("truck", 2 * H, "truck_summer", 1),
        Step("flight", 1 * H, "aircraft_hold", 2),
        Step("dwell", 1 * H, "room", 2),
    )
    assert r.duration_s == 6 * H
    assert r.position_at(1 * H) == (A.lat, A.lon)
    lat, lon = r.position_at(3 * H)
    assert lat == pytest.approx(50.0) and lon == pytest.approx(8.5)
    assert r.position_at(4.5 * H) is None  # no GPS fix in a cargo hold
    assert r.position_at(5.5 * H) == (C.lat, C.lon)
    assert r.position_at(99 * H) == (C.lat, C.lon)  # stays where it ended


def test_coverage_defaults_no_network_in_flight_or_customs():
    assert Step("truck", 1, "room", 1).has_coverage
    assert not Step("flight", 1, "room", 1).has_coverage
    assert not Step("customs", 1, "room", 1).has_coverage
    assert Step("customs", 1, "room", 1, coverage=True).has_coverage


def test_a_customs_hold_of_chosen_length_is_a_stop_at_its_waypoint():
    r = route(Step("dwell", H, "room", 0), Step("truck", H, "room", 1),
              Step("customs", 30 * H, "customs_hall", 1))
    seg = r.segment_at(10 * H)
    assert seg.step.kind == "customs" and seg.end_s - seg.start_s == 30 * H
    assert r.position_at(20 * H) == (B.lat, B.lon)


def test_a_diversion_leaves_the_corridor_and_comes_back():
    r = route(Step("dwell", H, "room", 0), Step("truck", 4 * H, "room", 1, detour_km=60.0))
    wps = (A, B)
    offsets = [distance_to_path_km(*r.position_at(H + i * 60.0), wps) for i in range(241)]
    assert max(offsets) == pytest.approx(60.0, rel=0.02)
    assert offsets[0] < 0.5 and offsets[-1] < 0.5
    plain = route(Step("dwell", H, "room", 0), Step("truck", 4 * H, "room", 1))
    assert max(distance_to_path_km(*plain.position_at(H + i * 600.0), wps) for i in range(25)) < 0.1


def test_invalid_routes_are_refused():
    with pytest.raises(ValueError):
        route(Step("truck", H, "room", 1))  # must start with a stop
    with pytest.raises(ValueError):
        route(Step("dwell", H, "room", 1))  # must start at waypoint 0
    with pytest.raises(ValueError):
        route(Step("dwell", H, "room", 0), Step("dwell", H, "room", 2))  # teleport
    with pytest.raises(ValueError):
        Step("boat", H, "room", 1)
    with pytest.raises(ValueError):
        Step("dwell", 0, "room", 0)


def test_distances():
    assert haversine_km(52.3086, 4.7639, 50.0379, 8.5622) == pytest.approx(365, abs=5)
    assert distance_to_path_km(50.5, 9.0, (A, B, C)) == pytest.approx(0.0, abs=0.01)
    assert distance_to_path_km(50.0, 10.0, (A, B)) == pytest.approx(71.5, abs=1.0)
