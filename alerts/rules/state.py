"""Per-logger incremental evaluation state (frozen values) and its JSON form.

Times are integer microseconds since the epoch (device time). A state summarises every reading of
one logger up to `last_us`; `advance` folds later readings into it in O(batch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Run:
    """An ongoing contiguous period in one condition (e.g. above the range): rule 3's excursion."""

    start: int
    known_us: int = 0  # time in the condition by sample-and-hold (rule 2)
    unknown_us: int = 0  # time within the run past the max gap
    peak: float | None = None
    late: bool = False  # its first reading arrived after more than the max gap
    alarm_us: int | None = None  # device time at which it met the alarm delay
    absorbed: bool = False  # it started inside a not yet cleared episode


@dataclass(frozen=True, slots=True)
class Episode:
    """An alert-worthy period of one condition on one logger: alarmed runs merged by clear time."""

    start: int
    alarm_us: int
    end: int | None = None  # back out of the condition (None: ongoing)
    confirmed: bool = False  # clear for the whole clear time since `end`
    late: bool = False  # the reading that raised it arrived late (found retroactively)
    peak: float | None = None
    count: int = 1  # alarmed occurrences merged into it
    last_us: int = 0  # latest device time with evidence of the condition


@dataclass(frozen=True, slots=True)
class Crossing:
    """The stability budget reached `level` % at device time `at_us`."""

    level: int
    at_us: int
    late: bool = False


@dataclass(frozen=True, slots=True)
class Visit:
    """A stay within a waypoint's radius, by positions (waypoint index into the lane)."""

    waypoint: int
    start: int
    last_in: int
    end: int | None = None


@dataclass(frozen=True, slots=True)
class LoggerState:
    logger_id: str
    fingerprint: str
    count: int = 0
    first_us: int | None = None
    last_us: int | None = None
    last_temp: float | None = None
    last_lat: float | None = None
    last_lon: float | None = None
    last_battery: float | None = None
    max_received_us: int | None = None
    min_c: float | None = None
    max_c: float | None = None
    held_us: int = 0
    out_us: int = 0
    high_us: int = 0
    low_us: int = 0
    unknown_us: int = 0
    mkt_terms: float = 0.0
    mkt_weight_s: float = 0.0
    temp_weight: float = 0.0  # Σ held seconds × °C, for the time-weighted mean
    crossings: tuple[Crossing, ...] = ()
    runs: Mapping[str, Run] = field(default_factory=dict)
    episodes: Mapping[str, tuple[Episode, ...]] = field(default_factory=dict)
    visit: Visit | None = None
    visits: tuple[Visit, ...] = ()
    trend: tuple[tuple[int, float], ...] = ()
    since_checkpoint: int = 0


def _run_json(r: Run) -> list[Any]:
    return [r.start, r.known_us, r.unknown_us, r.peak, r.late, r.alarm_us, r.absorbed]


def _episode_json(e: Episode) -> list[Any]:
    return [e.start, e.alarm_us, e.end, e.confirmed, e.late, e.peak, e.count, e.last_us]


def _visit_json(v: Visit) -> list[Any]:
    return [v.waypoint, v.start, v.last_in, v.end]


def state_to_json(s: LoggerState) -> dict[str, Any]:
    """A JSON-compatible dict; floats round-trip exactly through json."""
    return {
        "v": STATE_VERSION, "logger_id": s.logger_id, "fp": s.fingerprint, "count": s.count,
        "first": s.first_us, "last": s.last_us, "temp": s.last_temp, "lat": s.last_lat,
        "lon": s.last_lon, "battery": s.last_battery, "rx": s.max_received_us,
        "min": s.min_c, "max": s.max_c, "held": s.held_us, "out": s.out_us, "high": s.high_us,
        "low": s.low_us, "unknown": s.unknown_us, "mkt": [s.mkt_terms, s.mkt_weight_s],
        "tw": s.temp_weight, "cross": [[c.level, c.at_us, c.late] for c in s.crossings],
        "runs": {k: _run_json(r) for k, r in s.runs.items()},
        "eps": {k: [_episode_json(e) for e in v] for k, v in s.episodes.items()},
        "visit": _visit_json(s.visit) if s.visit else None,
        "visits": [_visit_json(v) for v in s.visits],
        "trend": [list(p) for p in s.trend], "scp": s.since_checkpoint,
    }


def _visit(v: list[Any]) -> Visit:
    return Visit(int(v[0]), int(v[1]), int(v[2]), None if v[3] is None else int(v[3]))


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)


def state_from_json(d: Mapping[str, Any]) -> LoggerState:
    if d.get("v") != STATE_VERSION:
        raise ValueError(f"unsupported logger state version {d.get('v')!r}")
    return LoggerState(
        logger_id=str(d["logger_id"]), fingerprint=str(d["fp"]), count=int(d["count"]),
        first_us=_opt_int(d["first"]), last_us=_opt_int(d["last"]),
        last_temp=_opt_float(d["temp"]), last_lat=_opt_float(d["lat"]),
        last_lon=_opt_float(d["lon"]), last_battery=_opt_float(d["battery"]),
        max_received_us=_opt_int(d["rx"]), min_c=_opt_float(d["min"]),
        max_c=_opt_float(d["max"]), held_us=int(d["held"]), out_us=int(d["out"]),
        high_us=int(d["high"]), low_us=int(d["low"]), unknown_us=int(d["unknown"]),
        mkt_terms=float(d["mkt"][0]), mkt_weight_s=float(d["mkt"][1]), temp_weight=float(d["tw"]),
        crossings=tuple(Crossing(int(c[0]), int(c[1]), bool(c[2])) for c in d["cross"]),
        runs={
            k: Run(int(r[0]), int(r[1]), int(r[2]), _opt_float(r[3]), bool(r[4]), _opt_int(r[5]),
                   bool(r[6]))
            for k, r in d["runs"].items()
        },
        episodes={
            k: tuple(
                Episode(int(e[0]), int(e[1]), _opt_int(e[2]), bool(e[3]), bool(e[4]),
                        _opt_float(e[5]), int(e[6]), int(e[7]))
                for e in v
            )
            for k, v in d["eps"].items()
        },
        visit=_visit(d["visit"]) if d["visit"] else None,
        visits=tuple(_visit(v) for v in d["visits"]),
        trend=tuple((int(p[0]), float(p[1])) for p in d["trend"]),
        since_checkpoint=int(d["scp"]),
    )
