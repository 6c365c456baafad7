"""Payload parsing: every bad-input case of CONTRACT.md gets its reason; good readings pass intact."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import payload as p

NOW = datetime(2026, 11, 25, 14, 10, tzinfo=UTC)
FULL = {"ts": "2026-11-25T14:03:00Z", "temp_c": -182.4, "seq": 1042, "lat": 50.03, "lon": 8.57,
        "battery_pct": 87, "light": False, "shock_g": 0.4, "humidity_pct": 40, "ln2_level_pct": 64}


def parse(doc: object) -> p.Parsed:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return p.parse_telemetry(raw, NOW)


def reason_of(doc: object) -> str:
    parsed = parse(doc)
    assert parsed.readings == [], parsed
    assert len(parsed.rejected) == 1, parsed
    return parsed.rejected[0].reason


def test_contract_example_is_one_full_reading() -> None:
    parsed = parse(FULL)
    assert parsed.rejected == [] and parsed.indexes == [0]
    assert parsed.readings == [p.ParsedReading(
        datetime(2026, 11, 25, 14, 3, tzinfo=UTC), -182.4, 50.03, 8.57, 87.0, False, 0.4, 40.0, 64.0,
        1042,
    )]


@pytest.mark.parametrize(("ts", "expected"), [
    ("2026-11-25T14:03:00Z", datetime(2026, 11, 25, 14, 3, tzinfo=UTC)),
    ("2026-11-25t14:03:00z", datetime(2026, 11, 25, 14, 3, tzinfo=UTC)),
    ("2026-11-25T15:03:00.250+01:00", datetime(2026, 11, 25, 14, 3, 0, 250000, tzinfo=UTC)),
    ("2026-11-25 14:03:00+00:00", datetime(2026, 11, 25, 14, 3, tzinfo=UTC)),
    ("2026-11-25T14:03:00.123456789Z", datetime(2026, 11, 25, 14, 3, 0, 123456, tzinfo=UTC)),
    (1795615380, datetime(2026, 11, 25, 14, 3, tzinfo=UTC)),
    (1795615380.5, datetime(2026, 11, 25, 14, 3, 0, 500000, tzinfo=UTC)),
])
def test_timestamps_become_utc(ts: object, expected: datetime) -> None:
    reading = parse({"ts": ts, "temp_c": 5}).readings[0]
    assert reading.ts == expected and reading.ts.tzinfo is UTC


@pytest.mark.parametrize(("doc", "reason"), [
    (b"not json", p.MALFORMED_JSON),
    (b'{"ts": "2026-11-25T14:03:00Z", "temp_c": 4', p.MALFORMED_JSON),
    (b"\xff\xfe\x00garbage", p.MALFORMED_JSON),
    (b"", p.MALFORMED_JSON),
    (b'"just a string"', p.INVALID_STRUCTURE),
    (b"42", p.INVALID_STRUCTURE),
    ({"readings": "nope"}, p.INVALID_STRUCTURE),
    ({"temp_c": 4.0}, p.MISSING_FIELD),
    ({"ts": "2026-11-25T14:03:00Z"}, p.MISSING_FIELD),
    ({"ts": None, "temp_c": 4.0}, p.MISSING_FIELD),
    ({"ts": "2026-11-25T14:03:00Z", "temp_c": "4.0"}, p.INVALID_FIELD),
    ({"ts": "2026-11-25T14:03:00Z", "temp_c": True}, p.INVALID_FIELD),
    (b'{"ts": "2026-11-25T14:03:00Z", "temp_c": NaN}', p.NON_FINITE),
    (b'{"ts": "2026-11-25T14:03:00Z", "temp_c": Infinity}', p.NON_FINITE),
    (b'{"ts": "2026-11-25T14:03:00Z", "temp_c": -Infinity}', p.NON_FINITE),
    (b'{"ts": "2026-11-25T14:03:00Z", "temp_c": 1e400}', p.NON_FINITE),
    ({"ts": "2026-11-25T14:03:00Z", "temp_c": -273.16}, p.TEMPERATURE_OUT_OF_RANGE),
    ({"ts": "2026-11-25T14:03:00Z", "temp_c": 100.01}, p.TEMPERATURE_OUT_OF_RANGE),
    ({"ts": "2026-11-25T14:03:00Z", "temp_c": 10**400}, p.TEMPERATURE_OUT_OF_RANGE),
    ({**FULL, "lat": 90.5}, p.COORDINATES_OUT_OF_RANGE),
    ({**FULL, "lon": -180.5}, p.COORDINATES_OUT_OF_RANGE),
    ({**FULL, "lon": None}, p.INVALID_FIELD),
    ({**FULL, "lat": "50"}, p.INVALID_FIELD),
    (b'{"ts": "2026-11-25T14:03:00Z", "temp_c": 4, "lat": NaN, "lon": 1}', p.NON_FINITE),
    ({**FULL, "battery_pct": 101}, p.INVALID_FIELD),
    ({**FULL, "shock_g": -1}, p.INVALID_FIELD),
    (b'{"ts": "2026-11-25T14:03:00Z", "temp_c": 4, "shock_g": 1e400}', p.NON_FINITE),
    (b'{"ts": "2026-11-25T14:03:00Z", "temp_c": 4, "battery_pct": NaN}', p.NON_FINITE),
    ({**FULL, "lat": True}, p.INVALID_FIELD),
    ({**FULL, "humidity_pct": "wet"}, p.INVALID_FIELD),
    ({**FULL, "light": "yes"}, p.INVALID_FIELD),
    ({**FULL, "seq": -1}, p.INVALID_FIELD),
    ({**FULL, "seq": 2**63}, p.INVALID_FIELD),
    ({**FULL, "seq": 3.0}, p.INVALID_FIELD),
    ({"ts": "2026-11-25T14:21:00Z", "temp_c": 4.0}, p.TS_IN_FUTURE),
    ({"ts": 1795616461, "temp_c": 4.0}, p.TS_IN_FUTURE),
    ({"ts": "2026-11-25T14:03:00", "temp_c": 4.0}, p.TS_INVALID),
    ({"ts": "2026-11-25", "temp_c": 4.0}, p.TS_INVALID),
    ({"ts": "yesterday", "temp_c": 4.0}, p.TS_INVALID),
    ({"ts": "2026-13-25T14:03:00Z", "temp_c": 4.0}, p.TS_INVALID),
    ({"ts": "2026-W48-3T14:03:00Z", "temp_c": 4.0}, p.TS_INVALID),
    ({"ts": -5, "temp_c": 4.0}, p.TS_INVALID),
    ({"ts": 1e300, "temp_c": 4.0}, p.TS_INVALID),
    ({"ts": True, "temp_c": 4.0}, p.TS_INVALID),
    ({"ts": [2026], "temp_c": 4.0}, p.TS_INVALID),
])
def test_every_bad_input_case_has_its_reason(doc: object, reason: str) -> None:
    assert reason_of(doc) == reason


def test_ts_exactly_ten_minutes_ahead_is_accepted_one_microsecond_more_is_not() -> None:
    edge = NOW + p.MAX_FUTURE
    assert parse({"ts": edge.isoformat(), "temp_c": 1}).readings
    late = edge + timedelta(microseconds=1)
    assert reason_of({"ts": late.isoformat(), "temp_c": 1}) == p.TS_IN_FUTURE


def test_payload_over_one_mebibyte_is_refused_unread() -> None:
    big = b'{"ts": "2026-11-25T14:03:00Z", "temp_c": 1, "pad": "' + b"x" * p.MAX_PAYLOAD_BYTES + b'"}'
    assert reason_of(big) == p.PAYLOAD_TOO_LARGE


def test_batch_over_ten_thousand_readings_is_refused_whole() -> None:
    reading = {"ts": "2026-11-25T14:03:00Z", "temp_c": 1}
    assert reason_of({"readings": [reading] * (p.MAX_BATCH_READINGS + 1)}) == p.BATCH_TOO_LARGE
    assert len(parse({"readings": [reading] * p.MAX_BATCH_READINGS}).readings) == p.MAX_BATCH_READINGS


def test_batch_readings_are_judged_one_by_one() -> None:
    raw = (b'{"readings": [{"ts": "2026-11-25T14:00:00Z", "temp_c": 5},'
           b' {"ts": "2026-11-25T14:01:00Z", "temp_c": NaN},'
           b' "oops",'
           b' {"ts": "2026-11-25T14:02:00Z", "temp_c": 6}]}')
    parsed = p.parse_telemetry(raw, NOW)
    assert [r.temp_c for r in parsed.readings] == [5.0, 6.0]
    assert parsed.indexes == [0, 3]
    assert [(r.reason, r.index) for r in parsed.rejected] == [
        (p.NON_FINITE, 1), (p.INVALID_STRUCTURE, 2)]
    assert b"NaN" in (parsed.rejected[0].element or b"")


def test_empty_batch_is_nothing_at_all() -> None:
    assert parse({"readings": []}) == p.Parsed([], [], [])


def test_unknown_fields_are_ignored() -> None:
    assert parse({"ts": "2026-11-25T14:03:00Z", "temp_c": 1, "firmware": "2.1"}).readings


@pytest.mark.parametrize(("topic", "expected"), [
    ("cc/v1/loggers/LOG-1/telemetry", ("telemetry", "LOG-1")),
    ("cc/v1/loggers/a.b_c-9/status", ("status", "a.b_c-9")),
    ("cc/v1/loggers/" + "x" * 64 + "/telemetry", ("telemetry", "x" * 64)),
])
def test_topics(topic: str, expected: tuple[str, str]) -> None:
    assert p.parse_topic(topic, "cc/v1") == expected


@pytest.mark.parametrize("topic", [
    "cc/v1/loggers/" + "x" * 65 + "/telemetry", "cc/v1/loggers/bad id/telemetry",
    "cc/v1/loggers/é/telemetry", "cc/v1/loggers/x/other", "cc/v2/loggers/x/telemetry",
    "cc/v1/loggers//telemetry",
])
def test_bad_topics(topic: str) -> None:
    rejected = p.parse_topic(topic, "cc/v1")
    assert isinstance(rejected, p.Rejected) and rejected.reason == p.INVALID_TOPIC


@pytest.mark.parametrize(("raw", "expected"), [
    (b"online", "online"), (b"OFFLINE\n", "offline"), (b'"online"', "online"), (b"", None),
])
def test_status(raw: bytes, expected: str | None) -> None:
    assert p.parse_status(raw) == expected


def test_bad_status() -> None:
    rejected = p.parse_status(b"sleeping")
    assert isinstance(rejected, p.Rejected) and rejected.reason == p.INVALID_STATUS


# -- properties ------------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
readings = st.fixed_dictionaries(
    {"ts": st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2026, 11, 25),  # noqa: DTZ001
                        timezones=st.just(UTC)).map(lambda d: d.isoformat()),
     "temp_c": st.floats(-273.15, 100)},
    optional={"lat": st.floats(-90, 90), "lon": st.floats(-180, 180),
              "battery_pct": st.floats(0, 100), "light": st.booleans(),
              "seq": st.integers(0, 2**63 - 1), "humidity_pct": st.integers(0, 100)},
).filter(lambda d: ("lat" in d) == ("lon" in d))


@given(readings)
@settings(max_examples=300)
def test_valid_readings_keep_their_values(doc: dict[str, object]) -> None:
    parsed = p.parse_telemetry(orjson.dumps(doc), NOW)
    assert parsed.rejected == []
    (reading,) = parsed.readings
    assert reading.ts == datetime.fromisoformat(str(doc["ts"]))
    assert reading.temp_c == doc["temp_c"]
    assert reading.seq == doc.get("seq")
    assert reading.lat == doc.get("lat")


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    parsed = p.parse_telemetry(raw, NOW)
    assert parsed.readings or parsed.rejected or parsed == p.Parsed([], [], [])


json_values = st.recursive(
    st.none() | st.booleans() | finite | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["ts", "temp_c", "lat", "lon", "seq", "readings", "n", "v", "bt", "light"]),
        inner, max_size=5),
    max_leaves=15,
)


@given(json_values)
@settings(max_examples=400)
def test_arbitrary_json_is_stored_or_rejected_never_raises(doc: object) -> None:
    parsed = p.parse_telemetry(json.dumps(doc).encode(), NOW)
    for reading in parsed.readings:
        assert -273.15 <= reading.temp_c <= 100 and math.isfinite(reading.temp_c)
        assert reading.ts.tzinfo is UTC and reading.ts <= NOW + p.MAX_FUTURE
    for rejected in parsed.rejected:
        assert rejected.reason in p.REASONS
