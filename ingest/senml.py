"""SenML (RFC 8428) JSON packs → reading objects in this service's vocabulary, one per distinct time."""

from __future__ import annotations

import math
from typing import Any, TypeGuard

INVALID_STRUCTURE = "invalid_structure"
INVALID_FIELD = "invalid_field"
RELATIVE_TIME = "relative_time"
STANDARD_GRAVITY = 9.80665
# RFC 8428 §4.5.3: a resolved time below 2**28 s is relative to "now". The only "now" a worker
# knows is the delivery time, which differs on every redelivery (the same message would store
# its reading again at another ts) and after any wait in the broker: such records are
# quarantined, never resolved. An absolute base time (bt) makes every offset from it absolute.
RELATIVE_TIME_LIMIT = 2.0**28
MAX_RECORDS = 200_000

# SenML name (last segment of bn + n) → (field, {accepted unit: converter}); None = no unit given.
_FIELDS: dict[str, tuple[str, dict[str | None, Any]]] = {
    "temp": ("temp_c", {None: float, "Cel": float, "K": lambda v: v - 273.15}),
    "temperature": ("temp_c", {None: float, "Cel": float, "K": lambda v: v - 273.15}),
    "lat": ("lat", {None: float, "lat": float}),
    "latitude": ("lat", {None: float, "lat": float}),
    "lon": ("lon", {None: float, "lon": float}),
    "longitude": ("lon", {None: float, "lon": float}),
    "battery": ("battery_pct", {None: float, "%": float, "%EL": float}),
    "humidity": ("humidity_pct", {None: float, "%": float, "%RH": float}),
    "ln2_level": ("ln2_level_pct", {None: float, "%": float}),
    "ln2": ("ln2_level_pct", {None: float, "%": float}),
    "shock": ("shock_g", {None: float, "g": float, "m/s2": lambda v: v / STANDARD_GRAVITY}),
    "seq": ("seq", {None: int}),
    "light": ("light", {}),
}

Problem = tuple[str, str]


class Pack:
    """The readings of one pack in order of first appearance, with per-reading problems."""

    __slots__ = ("items", "problems")

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.problems: dict[int, Problem] = {}


def _number(value: object) -> TypeGuard[int | float]:
    return type(value) is int or type(value) is float


def to_readings(records: list[Any]) -> Pack | Problem:
    """Resolve base fields and times; a malformed pack as a whole is a (reason, detail).

    Records at a relative time become readings whose problem is `relative_time` (grouped by
    that time, so a reading's fields are quarantined together), never readings at a guessed ts.
    """
    if len(records) > MAX_RECORDS:
        return "batch_too_large", f"{len(records)} SenML records, the limit is {MAX_RECORDS}"
    pack = Pack()
    by_time: dict[float | tuple[str, float], int] = {}
    base_name, base_time, base_unit, base_value = "", 0, None, 0.0  # an int keeps "t": -60 as sent
    for position, record in enumerate(records):
        if type(record) is not dict:
            return INVALID_STRUCTURE, f"SenML record {position} is not an object"
        if "bn" in record:
            base_name = record["bn"]
        if "bt" in record:
            base_time = record["bt"]
        if "bu" in record:
            base_unit = record["bu"]
        if "bv" in record:
            base_value = record["bv"]
        name, offset = record.get("n", ""), record.get("t", 0)
        if not (type(base_name) is str and type(name) is str and _number(base_time)
                and _number(base_value) and _number(offset)
                and (base_unit is None or type(base_unit) is str)):
            return INVALID_STRUCTURE, f"SenML record {position} has a malformed name, time or base value"
        when = base_time + offset
        if not math.isfinite(when):
            return INVALID_STRUCTURE, f"SenML record {position} has a non-finite time"
        relative = when < RELATIVE_TIME_LIMIT
        key: float | tuple[str, float] = ("relative", when) if relative else round(when, 6)
        slot = by_time.get(key)
        if slot is None:
            slot = by_time[key] = len(pack.items)
            pack.items.append({"t": when} if relative else {"ts": key})
            if relative:
                pack.problems[slot] = (RELATIVE_TIME, (
                    f"SenML time {when:g} s is relative (below 2^28 s): it would be resolved against "
                    "the delivery time, which changes on every redelivery; send an absolute bt"))
        problem = _apply(pack.items[slot], record, base_name + name, base_unit, base_value)
        if problem is not None and slot not in pack.problems:
            pack.problems[slot] = problem
    return pack


def _apply(
    item: dict[str, Any], record: dict[str, Any], full_name: str, base_unit: str | None,
    base_value: float,
) -> Problem | None:
    short = full_name.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    spec = _FIELDS.get(short)
    if spec is None:
        return None  # a measurement this service does not store
    field, units = spec
    if field == "light":
        value = record.get("vb")
        if type(value) is not bool:
            return INVALID_FIELD, "SenML 'light' needs a boolean value (vb)"
        item["light"] = value
        return None
    unit = record.get("u", base_unit)
    convert = units.get(unit)
    if convert is None:
        return INVALID_FIELD, f"SenML '{short}' in unit {unit!r} is not supported"
    value = record.get("v")
    if not _number(value):
        return INVALID_FIELD, f"SenML '{short}' needs a numeric value (v)"
    value = value + base_value if base_value else value
    if field == "seq":
        if type(value) is not int:
            return INVALID_FIELD, "SenML 'seq' must be an integer"
        item["seq"] = value
        return None
    if not math.isfinite(value):
        item[field] = value  # the reading check reports it as non-finite
        return None
    try:
        item[field] = convert(value)
    except OverflowError:
        return INVALID_FIELD, f"SenML '{short}' value is out of range"
    return None
