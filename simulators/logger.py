"""Data-logger model: sampling, clock skew, battery, store-and-forward, duplicate sends."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

CHANNELS = frozenset({"position", "battery", "light", "shock", "humidity", "ln2_level"})
FORMATS = ("object", "senml", "mixed")
MAX_BATCH = 10_000  # CONTRACT: a batch carries at most 10 000 readings


@dataclass(frozen=True, slots=True)
class Truth:
    """What the world is at one instant, before the logger's sensors and radio."""

    temp_c: float
    position: tuple[float, float] | None
    coverage: bool
    light: bool = False
    shock_g: float = 0.0
    ln2_level_pct: float | None = None


@dataclass(frozen=True, slots=True)
class SimulatedReading:
    """One sample as the logger stores it; `offset_s` is true time, the device adds its skew."""

    offset_s: float
    seq: int
    temp_c: float
    lat: float | None = None
    lon: float | None = None
    battery_pct: float | None = None
    light: bool | None = None
    shock_g: float | None = None
    humidity_pct: float | None = None
    ln2_level_pct: float | None = None


@dataclass(frozen=True, slots=True)
class Transmission:
    """One MQTT publish: a single reading or a store-and-forward batch."""

    send_s: float
    readings: tuple[SimulatedReading, ...]
    batch: bool
    fmt: str  # "object" or "senml"
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class LoggerSpec:
    id: str
    interval_s: int = 300
    skew_s: int = 0  # device clock minus true time
    battery_start_pct: float = 100.0
    battery_drain_pct_per_h: float = 0.05
    channels: frozenset[str] = field(default_factory=lambda: frozenset({"position", "battery"}))
    fmt: str = "object"
    ts_format: str = "rfc3339"  # or "unix"
    duplicate_rate: float = 0.0
    duplicate_copies: int = 1
    reupload_at_end: bool = False
    noise_c: float = 0.05
    seq_start: int = 1

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValueError("interval_s must be positive")
        if self.fmt not in FORMATS:
            raise ValueError(f"unknown payload format {self.fmt!r}")
        if self.ts_format not in ("rfc3339", "unix"):
            raise ValueError(f"unknown ts format {self.ts_format!r}")
        unknown = self.channels - CHANNELS
        if unknown:
            raise ValueError(f"unknown channels {sorted(unknown)}")

    def battery_at(self, offset_s: float, start_s: float) -> float:
        return self.battery_start_pct - self.battery_drain_pct_per_h * (offset_s - start_s) / 3600.0


def _sample(spec: LoggerSpec, t: float, seq: int, truth: Truth, battery: float,
            rng: random.Random, humidity: float) -> SimulatedReading:
    ch = spec.channels
    temp = round(truth.temp_c + rng.gauss(0.0, spec.noise_c), 1)
    lat = lon = None
    if "position" in ch and truth.position is not None:
        lat = round(truth.position[0] + rng.gauss(0.0, 0.00005), 5)
        lon = round(truth.position[1] + rng.gauss(0.0, 0.00005), 5)
    return SimulatedReading(
        offset_s=t,
        seq=seq,
        temp_c=temp,
        lat=lat,
        lon=lon,
        battery_pct=float(max(0, round(battery))) if "battery" in ch else None,
        light=truth.light if "light" in ch else None,
        shock_g=round(max(truth.shock_g, rng.uniform(0.05, 0.6)), 2) if "shock" in ch else None,
        humidity_pct=round(humidity, 1) if "humidity" in ch else None,
        ln2_level_pct=(
            round(truth.ln2_level_pct, 1)
            if "ln2_level" in ch and truth.ln2_level_pct is not None else None
        ),
    )


def _fmt(spec: LoggerSpec, rng: random.Random) -> str:
    if spec.fmt == "mixed":
        return rng.choice(("object", "senml"))
    return spec.fmt


def _chunks(readings: Sequence[SimulatedReading], size: int) -> list[tuple[SimulatedReading, ...]]:
    return [tuple(readings[i : i + size]) for i in range(0, len(readings), size)]


def run_logger(
    spec: LoggerSpec,
    world: Callable[[float], Truth],
    start_s: float,
    stop_s: float,
    rng: random.Random,
    *,
    silences: Sequence[tuple[float, float]] = (),
) -> tuple[list[Transmission], list[SimulatedReading]]:
    """Sample every interval from `start_s` until `stop_s` (or a flat battery).

    Returns the transmissions in send order and every reading taken. Without coverage (or inside
    a silence) readings are buffered and sent as a batch at the first sample back in coverage;
    what is still buffered at the end was never sent.
    """
    out: list[Transmission] = []
    taken: list[SimulatedReading] = []
    buffer: list[SimulatedReading] = []
    seq = spec.seq_start
    humidity = rng.uniform(35.0, 55.0)
    t = start_s
    while t <= stop_s:
        battery = spec.battery_at(t, start_s)
        if battery <= 0.0:
            break  # flat battery: the logger dies and its buffer with it
        humidity = min(95.0, max(5.0, humidity + rng.gauss(0.0, 0.3)))
        truth = world(t)
        reading = _sample(spec, t, seq, truth, battery, rng, humidity)
        taken.append(reading)
        seq += 1
        online = truth.coverage and not any(a <= t < b for a, b in silences)
        if not online:
            buffer.append(reading)
        else:
            if buffer:
                for chunk in _chunks(buffer, MAX_BATCH):
                    out.append(Transmission(t, chunk, True, _fmt(spec, rng)))
                buffer = []
            out.append(Transmission(t, (reading,), False, _fmt(spec, rng)))
        t += spec.interval_s
    out = _with_duplicates(spec, out, rng)
    if spec.reupload_at_end and taken:
        # Some loggers re-upload their whole memory when they reconnect at the destination.
        end = taken[-1].offset_s
        sent = [r for tx in out for r in tx.readings]
        out.extend(Transmission(end, c, True, _fmt(spec, rng), True) for c in _chunks(
            sorted(set(sent), key=lambda r: r.offset_s), 500))
    out.sort(key=lambda tx: tx.send_s)
    return out, taken


def _with_duplicates(spec: LoggerSpec, out: list[Transmission], rng: random.Random) -> list[Transmission]:
    if spec.duplicate_rate <= 0.0:
        return out
    result: list[Transmission] = []
    for tx in out:
        result.append(tx)
        if rng.random() < spec.duplicate_rate:
            for _ in range(spec.duplicate_copies):
                # A retry a little later, possibly re-encoded: the same readings all the same.
                delay = rng.uniform(0.5, min(30.0, spec.interval_s / 2))
                result.append(Transmission(tx.send_s + delay, tx.readings, tx.batch,
                                           _fmt(spec, rng), True))
    return result
