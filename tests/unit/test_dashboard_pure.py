"""Dashboard and report logic over plain values: gaps, resampling, corridor, percentiles, CSV."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.rules.geo import distance_to_path_km
from app.dashboard import gaps, lanes, resample, track
from app.reports import csv_export


@pytest.mark.parametrize(("ts", "start", "end", "expected"), [
    ([0, 60, 120], 0, 120, []),
    ([0, 60, 600, 660], 0, 660, [(240, 600)]),  # held 180 s, unknown until the next reading
    ([300, 360], 0, 360, [(0, 300)]),  # a lead-in longer than the max gap
    ([100, 160], 0, 160, []),  # a short lead-in is tolerated
    ([0, 60], 0, 1000, [(240, 1000)]),  # silence up to the end of the record
    ([], 0, 500, [(0, 500)]),
])
def test_logger_gaps(ts: list[float], start: float, end: float,
                     expected: list[tuple[float, float]]) -> None:
    assert gaps.logger_gaps(ts, 180, start, end) == expected


@given(st.lists(st.floats(0, 10_000), max_size=40), st.floats(1, 2_000))
def test_gaps_are_disjoint_ordered_and_inside_the_window(raw: list[float], max_gap: float) -> None:
    ts = sorted(raw)
    found = gaps.logger_gaps(ts, max_gap, 0.0, 10_000.0)
    for a, b in found:
        assert 0.0 <= a < b <= 10_000.0
        # No reading lies strictly inside a gap, and every gap is more than held time away.
        assert not any(a < t < b for t in ts)
    assert all(found[i][1] <= found[i + 1][0] for i in range(len(found) - 1))


def test_shipment_gap_is_when_every_logger_is_unknown() -> None:
    per = {"a": [(10.0, 50.0), (70.0, 90.0)], "b": [(30.0, 80.0)]}
    assert gaps.shipment_gaps(per) == [(30.0, 50.0), (70.0, 80.0)]
    assert gaps.clip([gaps.Gap(0, 100, "a")], 20, 40) == [gaps.Gap(20, 40, "a")]


def test_resample_buckets_on_the_clock_and_leaves_empty_buckets_empty() -> None:
    base = int(datetime(2026, 11, 20, 8, 7, tzinfo=UTC).timestamp() * 1e6)
    minute = 60_000_000
    ts = [base, base + minute, base + 40 * minute]
    cols = resample.resample(ts, [4.0, 6.0, 9.0], "15min")
    assert resample.iso_utc(cols["ts_us"]) == [
        "2026-11-20T08:00:00Z", "2026-11-20T08:15:00Z", "2026-11-20T08:30:00Z",
        "2026-11-20T08:45:00Z"]
    assert cols["count"].tolist() == [2, 0, 0, 1]
    assert (cols["min_c"][0], cols["mean_c"][0], cols["max_c"][0]) == (4.0, 5.0, 6.0)
    assert np.isnan(cols["mean_c"][1]) and np.isnan(cols["mean_c"][2])
    with pytest.raises(resample.TooManyBuckets):
        resample.resample(ts, [1.0, 2.0, 3.0], "1min", start_us=0, end_us=base)


@given(st.lists(st.integers(0, 4_000_000_000), min_size=1, max_size=50))
def test_iso_utc_matches_datetime(seconds: list[int]) -> None:
    us = np.array(seconds, dtype="int64") * 1_000_000
    expected = [datetime.fromtimestamp(s, UTC).isoformat().replace("+00:00", "Z")
                for s in seconds]
    assert resample.iso_utc(us) == expected


@pytest.mark.parametrize(("a", "b"), [((52.31, 4.76), (42.36, -71.01)), ((1.0, 1.0), (1.0, 1.0)),
                                      ((-33.9, 151.2), (-37.8, 144.9))])
def test_corridor_capsule_follows_the_leg_at_its_radius(
    a: tuple[float, float], b: tuple[float, float]
) -> None:
    ring = track.capsule(a, b, 50.0)
    assert ring[0] == ring[-1]
    for lon, lat in ring[:-1]:
        # Drawn in a plane: within 10 % of the true great-circle distance for these legs.
        assert 40.0 < distance_to_path_km(lat, lon, [a, b]) < 60.0
    area = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False))
    assert area > 0  # counter-clockwise exterior ring (RFC 7946)


def test_percentile_matches_numpy() -> None:
    values = [28.0, 30.0, 34.0, 50.0, 12.5]
    for q in (0, 25, 50, 95, 100):
        assert lanes.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert lanes.percentile([], 50) is None
    fixes = [lanes.Fix(t * 600.0, 52.31, 4.76) for t in range(4)] + [lanes.Fix(3000, 0, 0)]
    assert lanes.dwell_s(fixes, 52.31, 4.76, 5.0) == 1800.0


@given(st.floats(allow_nan=False, allow_infinity=False), st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),  # noqa: DTZ001 (hypothesis bounds are naive)
    timezones=st.just(UTC)))
def test_csv_cells_round_trip_exactly(value: float, ts: datetime) -> None:
    row = ("LOG-1", ts, value, None, -0.0, 50.0, True, None, None, None, 7, ts + timedelta(1),
           b"\x00\xff")
    text = csv_export.render([row])
    (back,) = csv_export.parse(text)
    assert back == row
    assert math.copysign(1, back[4]) == -1  # even the sign of zero survives
