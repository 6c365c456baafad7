"""Where a shipment is on its lane, in words: status first, then the stop or leg of its position."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.dashboard.whereabouts import Stop, whereabouts

# Leiden → Amsterdam airport → Frankfurt hub → Milan customs (positions rounded, radii as a lane has)
STOPS = [
    Stop("Leiden CTU", 52.166, 4.490, 5),
    Stop("AMS", 52.310, 4.768, 8),
    Stop("FRA hub", 50.033, 8.570, 10),
    Stop("MXP customs", 45.630, 8.723, 10),
]


def where(status: str, position: tuple[float, float] | None,
          stops: list[Stop] = STOPS) -> tuple[str, str]:
    w = whereabouts(status, position, stops, origin="Leiden CTU", destination="Ospedale Milano")
    return w["kind"], w["label"]


@pytest.mark.parametrize(("status", "position", "expected"), [
    ("packed", (52.166, 4.49), ("origin", "packed at Leiden CTU")),
    ("packed", None, ("origin", "packed at Leiden CTU")),
    ("delivered", (45.46, 9.19), ("destination", "delivered to Ospedale Milano")),
    ("received", None, ("destination", "received at Ospedale Milano")),
    ("in_transit", None, ("unknown", "in transit, no position yet")),
    ("customs_hold", None, ("unknown", "customs hold")),
    # 3 km from the airport's centre: inside its 8 km
    ("in_transit", (52.31, 4.812), ("stop", "at AMS")),
    ("customs_hold", (45.64, 8.70), ("stop", "customs hold at MXP customs")),
    # on the motorway near Cologne: between the airport and the hub
    ("in_transit", (50.94, 6.96), ("leg", "AMS → FRA hub")),
    # over the Alps: between the hub and Milan
    ("in_transit", (47.5, 8.6), ("leg", "FRA hub → MXP customs")),
    ("customs_hold", (47.5, 8.6), ("leg", "customs hold · FRA hub → MXP customs")),
    # 12 km from the hub: outside its 10 km radius, on the leg beyond it
    ("in_transit", (49.93, 8.60), ("leg", "FRA hub → MXP customs")),
])
def test_status_then_stop_or_leg(
    status: str, position: tuple[float, float] | None, expected: tuple[str, str]
) -> None:
    assert where(status, position) == expected


def test_overlapping_radii_name_the_nearest_stop() -> None:
    # Leiden CTU and a made-up depot 6 km away, both radii 10 km: the position 1 km from the depot
    stops = [Stop("Leiden CTU", 52.166, 4.490, 10), Stop("Depot", 52.166, 4.578, 10)]
    assert where("in_transit", (52.166, 4.565), stops) == ("stop", "at Depot")


def test_a_lane_without_waypoints_or_with_one() -> None:
    assert where("in_transit", (50.0, 8.0), []) == ("unknown", "in transit")
    assert where("in_transit", (50.0, 8.0), STOPS[2:3]) == ("unknown", "in transit near FRA hub")


def test_fields_name_the_waypoints() -> None:
    leg = whereabouts("in_transit", (50.94, 6.96), STOPS, origin="o", destination="d")
    assert leg == {"kind": "leg", "label": "AMS → FRA hub", "waypoint": None,
                   "from_waypoint": "AMS", "to_waypoint": "FRA hub"}
    stop = whereabouts("in_transit", (50.033, 8.57), STOPS, origin="o", destination="d")
    assert stop["waypoint"] == "FRA hub" and stop["from_waypoint"] is None


@given(st.floats(44.0, 54.0), st.floats(3.0, 11.0))
def test_every_position_in_transit_is_a_stop_or_a_leg_of_the_lane(lat: float, lon: float) -> None:
    w = whereabouts("in_transit", (lat, lon), STOPS, origin="o", destination="d")
    names = [s.name for s in STOPS]
    if w["kind"] == "stop":
        assert w["waypoint"] in names
    else:
        assert w["kind"] == "leg"
        i = names.index(w["from_waypoint"])
        assert names[i + 1] == w["to_waypoint"]
