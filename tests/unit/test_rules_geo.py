"""Great-circle distances: haversine and distance to the lane's polyline (rule 8)."""

from __future__ import annotations

import pytest

from alerts.rules import LaneSpec, Waypoint
from alerts.rules.geo import distance_to_path_km, distance_to_segment_km, haversine_km

DEG_KM = 111.195  # one degree of a great circle on the mean Earth radius


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [((51.5074, -0.1278), (48.8566, 2.3522), 343.56), ((0, 0), (1, 0), DEG_KM),
     ((0, 0), (0, 0), 0.0), ((0, 179.5), (0, -179.5), DEG_KM)],
)
def test_haversine(a: tuple[float, float], b: tuple[float, float], km: float) -> None:
    assert haversine_km(*a, *b) == pytest.approx(km, abs=0.01)


@pytest.mark.parametrize(
    ("point", "km"),
    [((1, 5), DEG_KM),  # beside the segment: cross-track distance
     ((0, 5), 0.0),  # on it
     ((0, -1), DEG_KM),  # behind the start: distance to the start
     ((0, 11), DEG_KM)],  # past the end: distance to the end
)
def test_distance_to_segment(point: tuple[float, float], km: float) -> None:
    assert distance_to_segment_km(*point, (0, 0), (0, 10)) == pytest.approx(km, abs=0.01)


def test_distance_to_polyline_takes_the_nearest_leg() -> None:
    path = [(0, 0), (0, 10), (10, 10)]
    assert distance_to_path_km(5, 11, path) == pytest.approx(DEG_KM * 0.99619, abs=0.01)
    assert distance_to_path_km(-1, 5, path) == pytest.approx(DEG_KM, abs=0.01)
    assert distance_to_path_km(1, 1, [(0, 0)]) == pytest.approx(haversine_km(0, 0, 1, 1))
    with pytest.raises(ValueError):
        distance_to_path_km(0, 0, [])


def test_lane_path_is_origin_waypoints_destination() -> None:
    wp = Waypoint("FRA", 50.03, 8.57, 5, 4)
    assert LaneSpec(10, 20, 50, (wp,)).path() == ((50.03, 8.57),)
    lane = LaneSpec(10, 20, 50, (wp,), origin=(52.0, 4.5), destination=(42.3, -71.0))
    assert lane.path() == ((52.0, 4.5), (50.03, 8.57), (42.3, -71.0))
