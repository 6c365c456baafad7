"""Pure parsing and validation of logger payloads (CONTRACT.md, MQTT): each reading or a rejection."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from ingest import senml

MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_BATCH_READINGS = 10_000
MAX_FUTURE = timedelta(minutes=10)
TEMP_MIN_C, TEMP_MAX_C = -273.15, 100.0
SEQ_MAX = 2**63 - 1
SHOCK_MAX_G = 10_000.0  # far beyond any shipper's shock sensor; only keeps out garbage
# Unix seconds accepted for `ts`: from the epoch up to the year 9999 (beyond, datetime overflows).
_UNIX_MAX = 253_402_300_799.0
_LOGGER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_STATUSES = {b"online": "online", b"offline": "offline"}

# Rejection reasons: a closed, low-cardinality set (metric label, API filter).
PAYLOAD_TOO_LARGE = "payload_too_large"
MALFORMED_JSON = "malformed_json"
INVALID_STRUCTURE = "invalid_structure"
BATCH_TOO_LARGE = "batch_too_large"
MISSING_FIELD = "missing_field"
INVALID_FIELD = "invalid_field"
NON_FINITE = "non_finite"
TEMPERATURE_OUT_OF_RANGE = "temperature_out_of_range"
COORDINATES_OUT_OF_RANGE = "coordinates_out_of_range"
TS_INVALID = "ts_invalid"
TS_IN_FUTURE = "ts_in_future"
RELATIVE_TIME = senml.RELATIVE_TIME
INVALID_TOPIC = "invalid_topic"
INVALID_STATUS = "invalid_status"
UNKNOWN_LOGGER = "unknown_logger"
DUPLICATE_CONFLICT = "duplicate_conflict"
STORAGE_ERROR = "storage_error"
REASONS = (
    PAYLOAD_TOO_LARGE, MALFORMED_JSON, INVALID_STRUCTURE, BATCH_TOO_LARGE, MISSING_FIELD,
    INVALID_FIELD, NON_FINITE, TEMPERATURE_OUT_OF_RANGE, COORDINATES_OUT_OF_RANGE, TS_INVALID,
    TS_IN_FUTURE, RELATIVE_TIME, INVALID_TOPIC, INVALID_STATUS, UNKNOWN_LOGGER, DUPLICATE_CONFLICT,
    STORAGE_ERROR,
)


class ParsedReading(NamedTuple):
    """One validated measurement; field order is the staging table's column order.

    A NamedTuple rather than a frozen dataclass: equally immutable, and it goes into the COPY row
    as it is (one object per reading on the hot path).
    """

    ts: datetime
    temp_c: float
    lat: float | None = None
    lon: float | None = None
    battery_pct: float | None = None
    light: bool | None = None
    shock_g: float | None = None
    humidity_pct: float | None = None
    ln2_level_pct: float | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why (part of) a payload was quarantined.

    `index` is the reading's position in a batch or SenML pack (None: the whole payload), `element`
    the offending reading as JSON text (None: the payload itself is the evidence).
    """

    reason: str
    detail: str
    index: int | None = None
    element: bytes | None = None


class Parsed(NamedTuple):
    readings: list[ParsedReading]
    indexes: list[int]
    rejected: list[Rejected]


Problem = tuple[str, str]  # (reason, detail) of one reading


def parse_topic(topic: str, prefix: str) -> tuple[str, str] | Rejected:
    """`{prefix}/loggers/{logger_id}/{telemetry|status}` → (kind, logger_id)."""
    head = f"{prefix}/loggers/"
    if topic.startswith(head):
        logger_id, _, kind = topic[len(head):].partition("/")
        if kind in ("telemetry", "status") and _LOGGER_ID.fullmatch(logger_id):
            return kind, logger_id
    return Rejected(INVALID_TOPIC, f"not {head}<logger id [A-Za-z0-9._-]{{1,64}}>/telemetry|status")


def parse_status(payload: bytes) -> str | Rejected | None:
    """`online` / `offline` (also as a JSON string); None for an empty (retained-clear) payload."""
    if not payload:
        return None
    word = payload.strip().strip(b'"').lower()
    status = _STATUSES.get(word)
    if status is None:
        return Rejected(INVALID_STATUS, "status must be 'online' or 'offline'")
    return status


def parse_telemetry(payload: bytes, received_at: datetime) -> Parsed:
    """A reading object, a `{"readings": [...]}` batch or a SenML pack, judged reading by reading."""
    parsed = parse_message(payload, received_at)
    return Parsed([parsed], [0], []) if type(parsed) is ParsedReading else parsed  # type: ignore[return-value]


def parse_message(payload: bytes, received_at: datetime) -> ParsedReading | Parsed:
    """parse_telemetry, with the common case (one valid reading) returned bare: no lists."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return _whole(PAYLOAD_TOO_LARGE, f"{len(payload)} bytes, the limit is {MAX_PAYLOAD_BYTES}")
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        doc = _lenient_load(payload)
        if isinstance(doc, Rejected):
            return Parsed([], [], [doc])
    max_ts = received_at + MAX_FUTURE
    if type(doc) is dict:
        batch = doc.get("readings")
        if batch is None:
            one = check_reading(doc, max_ts)
            if type(one) is ParsedReading:
                return one
            return Parsed([], [], [Rejected(*one)])
        if type(batch) is not list:
            return _whole(INVALID_STRUCTURE, "'readings' must be a list of reading objects")
        return _judge_all(batch, max_ts)
    if type(doc) is list:
        pack = senml.to_readings(doc)
        if isinstance(pack, tuple):
            return _whole(*pack)
        return _judge_all(pack.items, max_ts, pack.problems)
    return _whole(INVALID_STRUCTURE, "expected a reading object, a readings batch or a SenML array")


def _whole(reason: str, detail: str) -> Parsed:
    return Parsed([], [], [Rejected(reason, detail)])


def _lenient_load(payload: bytes) -> Any:
    """orjson refuses NaN/Infinity outright; the stdlib parser lets us reject just those readings."""
    try:
        return json.loads(payload)
    except (ValueError, RecursionError) as exc:
        return Rejected(MALFORMED_JSON, f"not JSON: {str(exc)[:200]}")


def _judge_all(
    items: list[Any], max_ts: datetime, problems: dict[int, Problem] | None = None
) -> Parsed:
    if len(items) > MAX_BATCH_READINGS:
        return _whole(BATCH_TOO_LARGE, f"{len(items)} readings, the limit is {MAX_BATCH_READINGS}")
    readings: list[ParsedReading] = []
    indexes: list[int] = []
    rejected: list[Rejected] = []
    for index, item in enumerate(items):
        one = problems[index] if problems and index in problems else check_reading(item, max_ts)
        if type(one) is ParsedReading:
            readings.append(one)
            indexes.append(index)
        else:
            reason, detail = one  # type: ignore[misc]
            rejected.append(Rejected(reason, detail, index, element_json(item)))
    return Parsed(readings, indexes, rejected)


def element_json(item: Any) -> bytes:
    """The offending element as JSON text (NaN kept visible, non-ASCII escaped), bounded."""
    try:
        text = json.dumps(item, ensure_ascii=True, allow_nan=True, default=repr)
    except (ValueError, TypeError, RecursionError):
        text = repr(item)
    return text[:65536].encode()


def check_reading(obj: Any, max_ts: datetime) -> ParsedReading | Problem:
    """Validate one reading object; the hot path of ingest, so written flat."""
    if type(obj) is not dict:
        return INVALID_STRUCTURE, "a reading must be a JSON object"
    raw_ts = obj.get("ts")
    temp = obj.get("temp_c")
    if raw_ts is None:
        return MISSING_FIELD, "ts is required"
    if temp is None:
        return MISSING_FIELD, "temp_c is required"
    ts = parse_ts(raw_ts)
    if type(ts) is not datetime:
        return ts  # type: ignore[return-value]
    if ts > max_ts:
        return TS_IN_FUTURE, f"ts {ts.isoformat()} is more than 10 min after it was received"
    kind = type(temp)
    if kind is not float and kind is not int:
        return INVALID_FIELD, "temp_c must be a number"
    if not TEMP_MIN_C <= temp <= TEMP_MAX_C:
        if kind is float and not math.isfinite(temp):
            return NON_FINITE, f"temp_c is {temp}"
        return TEMPERATURE_OUT_OF_RANGE, f"temp_c {temp} is outside -273.15..100"
    if kind is int:
        temp = float(temp)
    if len(obj) == 2:
        return _reading(ParsedReading, (ts, temp, None, None, None, None, None, None, None, None))
    # Any: checked at run time by `type(x) in _NUMBER` (mypy cannot narrow that, and a
    # function call per field would cost the hot path).
    lat: Any = obj.get("lat")
    lon: Any = obj.get("lon")
    if lat is not None or lon is not None:
        if not (type(lat) in _NUMBER and type(lon) in _NUMBER
                and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            return _position_problem(lat, lon)
        lat = float(lat)
        lon = float(lon)
    battery = obj.get("battery_pct")
    shock = obj.get("shock_g")
    humidity = obj.get("humidity_pct")
    ln2 = obj.get("ln2_level_pct")
    light = obj.get("light")
    seq = obj.get("seq")
    # One test for the usual case (every optional field absent or fine); details only on failure.
    if not ((battery is None or (type(battery) in _NUMBER and 0.0 <= battery <= 100.0))
            and (shock is None or (type(shock) in _NUMBER and 0.0 <= shock <= SHOCK_MAX_G))
            and (humidity is None or (type(humidity) in _NUMBER and 0.0 <= humidity <= 100.0))
            and (ln2 is None or (type(ln2) in _NUMBER and 0.0 <= ln2 <= 100.0))
            and (light is None or type(light) is bool)
            and (seq is None or (type(seq) is int and 0 <= seq <= SEQ_MAX))):
        return _optional_problem(obj)
    return _reading(ParsedReading, (
        ts, temp, lat, lon, None if battery is None else float(battery), light,
        None if shock is None else float(shock), None if humidity is None else float(humidity),
        None if ln2 is None else float(ln2), seq,
    ))


_NUMBER = (float, int)
# A NamedTuple built without its Python-level __new__ (a measurable share of the hot path).
_reading = tuple.__new__
_BOUNDED = (
    ("battery_pct", 0.0, 100.0),
    ("shock_g", 0.0, SHOCK_MAX_G),
    ("humidity_pct", 0.0, 100.0),
    ("ln2_level_pct", 0.0, 100.0),
)


def _optional_problem(obj: dict[str, Any]) -> Problem:
    for name, low, high in _BOUNDED:
        value = obj.get(name)
        if value is None:
            continue
        kind = type(value)
        if kind is not float and kind is not int:
            return INVALID_FIELD, f"{name} must be a number"
        if not low <= value <= high:
            if kind is float and not math.isfinite(value):
                return NON_FINITE, f"{name} is {value}"
            return INVALID_FIELD, f"{name} {value} is outside {low:g}..{high:g}"
    if obj.get("light") is not None and type(obj.get("light")) is not bool:
        return INVALID_FIELD, "light must be true or false"
    return INVALID_FIELD, "seq must be an integer from 0 to 2^63-1"


def _position_problem(lat: Any, lon: Any) -> Problem:
    if lat is None or lon is None:
        return INVALID_FIELD, "lat and lon come together"
    for name, value, limit in (("lat", lat, 90.0), ("lon", lon, 180.0)):
        kind = type(value)
        if kind is not float and kind is not int:
            return INVALID_FIELD, f"{name} must be a number"
        if not -limit <= value <= limit:
            if kind is float and not math.isfinite(value):
                return NON_FINITE, f"{name} is {value}"
            return COORDINATES_OUT_OF_RANGE, f"{name} {value} is outside -{limit:g}..{limit:g}"
    return INVALID_FIELD, "lat and lon must be numbers"


def parse_ts(raw: Any) -> datetime | Problem:
    """RFC 3339 with an offset, or Unix seconds → an aware UTC datetime."""
    kind = type(raw)
    if kind is str:
        if (len(raw) < 20 or raw[4] != "-" or raw[7] != "-" or raw[10] not in "Tt "
                or raw[13] != ":" or raw[16] != ":"):
            return TS_INVALID, f"ts {_show(raw)} is not RFC 3339 (YYYY-MM-DDTHH:MM:SS±HH:MM)"
        try:
            ts = datetime.fromisoformat(raw if raw[10] != "t" and raw[-1] != "z" else raw.upper())
        except ValueError:
            return TS_INVALID, f"ts {_show(raw)} is not a valid date and time"
        tz = ts.tzinfo
        if tz is UTC:
            return ts
        if tz is None:
            return TS_INVALID, f"ts {_show(raw)} has no UTC offset"
        return ts.astimezone(UTC)
    if kind is int or kind is float:
        if not 0 <= raw <= _UNIX_MAX:
            if kind is float and not math.isfinite(raw):
                return NON_FINITE, f"ts is {raw}"
            return TS_INVALID, f"ts {raw} is outside the Unix seconds range"
        return datetime.fromtimestamp(raw, UTC)
    return TS_INVALID, "ts must be an RFC 3339 string or Unix seconds"


def _show(value: str) -> str:
    return repr(value[:64])
