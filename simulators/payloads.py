"""Payload encoders of CONTRACT.md: one reading object, a store-and-forward batch, SenML (RFC 8428)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from simulators.logger import SimulatedReading

_FIELDS = ("lat", "lon", "battery_pct", "light", "shock_g", "humidity_pct", "ln2_level_pct")
# SenML record names and units for the optional channels (RFC 8428 units where one exists).
_SENML = (
    ("lat", "lat", "lat"),
    ("lon", "lon", "lon"),
    ("battery_pct", "battery", "%"),
    ("light", "light", None),
    ("shock_g", "shock", "g"),
    ("humidity_pct", "humidity", "%RH"),
    ("ln2_level_pct", "ln2_level", "%"),
)


def device_time(t0: datetime, reading: SimulatedReading, skew_s: int) -> datetime:
    """The reading's device timestamp: true time plus the logger's clock skew, whole seconds."""
    if t0.tzinfo is None:
        raise ValueError("t0 must be timezone-aware")
    ts = t0 + timedelta(seconds=round(reading.offset_s) + skew_s)
    return ts.astimezone(UTC).replace(microsecond=0)


def rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reading_object(reading: SimulatedReading, ts: datetime, *, unix: bool = False) -> dict[str, object]:
    obj: dict[str, object] = {
        "ts": int(ts.timestamp()) if unix else rfc3339(ts),
        "temp_c": reading.temp_c,
        "seq": reading.seq,
    }
    for name in _FIELDS:
        value = getattr(reading, name)
        if value is not None:
            obj[name] = value
    return obj


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def encode_object(reading: SimulatedReading, ts: datetime, *, unix: bool = False) -> bytes:
    return _dumps(reading_object(reading, ts, unix=unix))


def encode_batch(
    readings: Sequence[SimulatedReading], stamps: Sequence[datetime], *, unix: bool = False
) -> bytes:
    return _dumps({"readings": [reading_object(r, ts, unix=unix) for r, ts in zip(
        readings, stamps, strict=True)]})


def encode_senml(
    readings: Sequence[SimulatedReading], stamps: Sequence[datetime], *, base_name: str | None = None
) -> bytes:
    """A SenML pack: base time on the first record, one reading per distinct time."""
    if not readings:
        raise ValueError("an empty SenML pack carries nothing")
    bt = int(stamps[0].timestamp())
    records: list[dict[str, object]] = []
    for reading, ts in zip(readings, stamps, strict=True):
        rel = int(ts.timestamp()) - bt
        recs: list[dict[str, object]] = [{"n": "temp", "u": "Cel", "v": reading.temp_c},
                                         {"n": "seq", "v": reading.seq}]
        for attr, name, unit in _SENML:
            value = getattr(reading, attr)
            if value is None:
                continue
            rec: dict[str, object] = {"n": name}
            if unit:
                rec["u"] = unit
            rec["vb" if isinstance(value, bool) else "v"] = value
            recs.append(rec)
        for rec in recs:
            if rel:
                rec["t"] = rel
        records.extend(recs)
    first = {"bt": bt, **records[0]}
    if base_name:
        first = {"bn": base_name, **first}
    records[0] = first
    return _dumps(records)
