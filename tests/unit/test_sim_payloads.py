"""Payload encoders: the reading object, the store-and-forward batch and SenML (RFC 8428)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from simulators.logger import SimulatedReading
from simulators.payloads import encode_batch, encode_object, encode_senml

TS = datetime(2026, 11, 25, 14, 3, tzinfo=UTC)
FULL = SimulatedReading(0.0, 1042, -182.4, 50.03, 8.57, 87.0, False, 0.4, 40.0, 64.0)
BARE = SimulatedReading(300.0, 1043, -182.1)


def test_object_matches_the_contract_example():
    obj = json.loads(encode_object(FULL, TS))
    assert obj == {"ts": "2026-11-25T14:03:00Z", "temp_c": -182.4, "seq": 1042, "lat": 50.03,
                   "lon": 8.57, "battery_pct": 87.0, "light": False, "shock_g": 0.4,
                   "humidity_pct": 40.0, "ln2_level_pct": 64.0}
    assert json.loads(encode_object(BARE, TS)) == {"ts": "2026-11-25T14:03:00Z",
                                                   "temp_c": -182.1, "seq": 1043}
    assert json.loads(encode_object(BARE, TS, unix=True))["ts"] == int(TS.timestamp())


def test_batch_wraps_readings():
    body = json.loads(encode_batch([FULL, BARE], [TS, TS + timedelta(minutes=5)]))
    assert [r["ts"] for r in body["readings"]] == ["2026-11-25T14:03:00Z", "2026-11-25T14:08:00Z"]
    with pytest.raises(ValueError):
        encode_batch([FULL], [TS, TS])


def resolve_senml(pack: list[dict]) -> dict[int, dict[str, object]]:
    """A minimal RFC 8428 resolver: base name/time carried forward, grouped by resolved time."""
    bn, bt = "", 0
    out: dict[int, dict[str, object]] = {}
    for rec in pack:
        bn = rec.get("bn", bn)
        bt = rec.get("bt", bt)
        t = bt + rec.get("t", 0)
        name = bn + rec["n"]
        value = rec["vb"] if "vb" in rec else rec["v"]
        out.setdefault(t, {})[name] = (value, rec.get("u"))
    return out


def test_senml_pack_carries_one_reading_per_distinct_time():
    second = TS + timedelta(minutes=5)
    pack = json.loads(encode_senml([FULL, BARE], [TS, second]))
    assert pack[0]["bt"] == int(TS.timestamp()) and "bn" not in pack[0]
    resolved = resolve_senml(pack)
    assert set(resolved) == {int(TS.timestamp()), int(second.timestamp())}
    first = resolved[int(TS.timestamp())]
    assert first["temp"] == (-182.4, "Cel") and first["seq"] == (1042, None)
    assert first["lat"] == (50.03, "lat") and first["lon"] == (8.57, "lon")
    assert first["battery"] == (87.0, "%") and first["light"] == (False, None)
    assert first["ln2_level"] == (64.0, "%") and first["humidity"] == (40.0, "%RH")
    assert resolved[int(second.timestamp())] == {"temp": (-182.1, "Cel"), "seq": (1043, None)}
    named = json.loads(encode_senml([BARE], [TS], base_name="urn:dev:id:L1:"))
    assert named[0]["bn"] == "urn:dev:id:L1:"


def test_encoders_refuse_what_json_cannot_carry():
    with pytest.raises(ValueError):
        encode_object(SimulatedReading(0.0, 1, float("nan")), TS)
    with pytest.raises(ValueError):
        encode_senml([], [])
