"""SenML (RFC 8428) packs on the telemetry topic: one reading per distinct resolved time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest import payload as p

NOW = datetime(2026, 11, 25, 14, 10, tzinfo=UTC)
T0 = 1795615380.0  # 2026-11-25T14:03:00Z


def parse(pack: object) -> p.Parsed:
    return p.parse_telemetry(json.dumps(pack).encode(), NOW)


def test_base_name_and_time_group_records_into_readings() -> None:
    parsed = parse([
        {"bn": "urn:dev:ow:LOG-7:", "bt": T0, "n": "temp", "u": "Cel", "v": 4.5},
        {"n": "lat", "u": "lat", "v": 50.03},
        {"n": "lon", "u": "lon", "v": 8.57},
        {"n": "battery", "u": "%EL", "v": 87},
        {"n": "light", "vb": False},
        {"n": "seq", "v": 12},
        {"n": "temp", "u": "Cel", "v": 4.7, "t": 60},
        {"n": "humidity", "u": "%RH", "v": 40, "t": 60},
        {"n": "firmware", "vs": "2.1"},
    ])
    assert parsed.rejected == []
    first, second = parsed.readings
    assert first == p.ParsedReading(datetime(2026, 11, 25, 14, 3, tzinfo=UTC), 4.5, 50.03, 8.57, 87.0,
                              False, seq=12)
    assert second.ts == datetime(2026, 11, 25, 14, 4, tzinfo=UTC)
    assert (second.temp_c, second.humidity_pct, second.lat) == (4.7, 40.0, None)


def test_kelvin_and_shock_units_are_converted() -> None:
    (reading,) = parse([{"bt": T0, "n": "temp", "u": "K", "v": 77.15},
                        {"n": "shock", "u": "m/s2", "v": 9.80665}]).readings
    assert reading.temp_c == pytest.approx(-196.0)
    assert reading.shock_g == pytest.approx(1.0)


def test_relative_times_are_quarantined_never_resolved_against_delivery() -> None:
    parsed = parse([{"n": "temp", "v": 5.0, "t": -30}, {"n": "lat", "v": 50.0, "t": -30},
                    {"n": "lon", "v": 8.0, "t": -30}, {"n": "temp", "v": 5.5}])
    assert parsed.readings == []
    assert [(r.reason, r.index) for r in parsed.rejected] == [
        (p.RELATIVE_TIME, 0), (p.RELATIVE_TIME, 1)]
    assert "send an absolute bt" in parsed.rejected[0].detail
    # The evidence is the reading as the pack described it: its relative time and its fields.
    assert json.loads(parsed.rejected[0].element or b"") == {
        "t": -30, "temp_c": 5.0, "lat": 50.0, "lon": 8.0}


def test_offsets_from_an_absolute_base_time_are_absolute() -> None:
    parsed = parse([{"bt": T0, "n": "temp", "v": 5.0, "t": -30}, {"n": "temp", "v": 6.0},
                    {"bt": 0, "n": "temp", "v": 7.0, "t": 5}])
    assert [(r.ts, r.temp_c) for r in parsed.readings] == [
        (datetime(2026, 11, 25, 14, 2, 30, tzinfo=UTC), 5.0),
        (datetime(2026, 11, 25, 14, 3, tzinfo=UTC), 6.0)]
    # A later record that sets a relative base time again is relative, whatever came before.
    assert [(r.reason, r.index) for r in parsed.rejected] == [(p.RELATIVE_TIME, 2)]


@given(
    bt=st.none() | st.floats(0, 2.0**28 - 1) | st.floats(T0 - 10**7, T0),
    offsets=st.lists(st.integers(-10**6, 0), min_size=1, max_size=6),
    delay=st.floats(0, 10**7),
)
def test_a_redelivery_parses_to_the_same_readings_whenever_it_arrives(
    bt: float | None, offsets: list[int], delay: float
) -> None:
    """The same bytes delivered again later never yield a reading at another time."""
    pack: list[dict[str, object]] = [{"n": "temp", "v": 4.0, "t": t} for t in offsets]
    if bt is not None:
        pack[0] = {"bt": bt, **pack[0]}
    body = json.dumps(pack).encode()
    first = p.parse_telemetry(body, NOW)
    later = p.parse_telemetry(body, NOW + timedelta(seconds=delay))
    assert (later.readings, later.rejected) == (first.readings, first.rejected)
    times = list(dict.fromkeys((bt or 0.0) + t for t in offsets))
    assert [r.index for r in first.rejected] == [i for i, t in enumerate(times) if t < 2**28]
    assert {r.reason for r in first.rejected} <= {p.RELATIVE_TIME}
    assert [r.ts.timestamp() for r in first.readings] == pytest.approx(
        [t for t in times if t >= 2**28])


def test_base_value_is_added() -> None:
    (reading,) = parse([{"bt": T0, "bv": 2.0, "n": "temp", "v": 3.0}]).readings
    assert reading.temp_c == 5.0


def test_a_bad_record_rejects_only_its_reading() -> None:
    parsed = parse([
        {"bt": T0, "n": "temp", "u": "degF", "v": 40},
        {"n": "temp", "v": 5.0, "t": 60},
        {"n": "lat", "v": 50.0, "t": 120},
        {"n": "temp", "v": 999.0, "t": 180},
    ])
    assert [r.temp_c for r in parsed.readings] == [5.0]
    assert [(r.reason, r.index) for r in parsed.rejected] == [
        (p.INVALID_FIELD, 0), (p.MISSING_FIELD, 2), (p.TEMPERATURE_OUT_OF_RANGE, 3)]


@pytest.mark.parametrize("pack", [
    [{"bn": 5, "n": "temp", "v": 1}],
    [{"n": "temp", "v": 1, "t": "now"}],
    ["temp"],
])
def test_malformed_packs_are_refused_whole(pack: list[object]) -> None:
    parsed = parse(pack)
    assert parsed.readings == [] and [r.reason for r in parsed.rejected] == [p.INVALID_STRUCTURE]


def test_future_senml_time_is_refused() -> None:
    parsed = parse([{"bt": NOW.timestamp() + 3600, "n": "temp", "v": 1}])
    assert [r.reason for r in parsed.rejected] == [p.TS_IN_FUTURE]


def test_empty_pack_is_nothing() -> None:
    assert parse([]) == p.Parsed([], [], [])
