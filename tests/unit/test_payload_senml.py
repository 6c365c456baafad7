"""SenML (RFC 8428) packs on the telemetry topic: one reading per distinct resolved time."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

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
    assert first == p.Reading(datetime(2026, 11, 25, 14, 3, tzinfo=UTC), 4.5, 50.03, 8.57, 87.0,
                              False, seq=12)
    assert second.ts == datetime(2026, 11, 25, 14, 4, tzinfo=UTC)
    assert (second.temp_c, second.humidity_pct, second.lat) == (4.7, 40.0, None)


def test_kelvin_and_shock_units_are_converted() -> None:
    (reading,) = parse([{"bt": T0, "n": "temp", "u": "K", "v": 77.15},
                        {"n": "shock", "u": "m/s2", "v": 9.80665}]).readings
    assert reading.temp_c == pytest.approx(-196.0)
    assert reading.shock_g == pytest.approx(1.0)


def test_relative_times_count_from_reception() -> None:
    (reading,) = parse([{"n": "temp", "v": 5.0, "t": -30}]).readings
    assert reading.ts == datetime(2026, 11, 25, 14, 9, 30, tzinfo=UTC)


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
