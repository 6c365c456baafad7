"""Report statistics from the complete reading record, by the evaluation's own rules (rules 2–5)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from alerts.rules.advance import advance, initial_state
from alerts.rules.mkt import mkt_from_sums
from alerts.rules.model import LaneSpec, ProductProfile, Sample, SeriesContext, Waypoint
from alerts.rules.state import LoggerState
from alerts.rules.timeutil import US


@dataclass(frozen=True, slots=True)
class LoggerStats:
    logger_id: str
    reading_count: int
    min_c: float | None
    max_c: float | None
    mean_c: float | None
    mkt_c: float | None
    time_out_of_range_s: float
    time_high_s: float
    time_low_s: float
    time_unknown_s: float


def product_profile(product: dict[str, Any]) -> ProductProfile:
    return ProductProfile(
        temp_min_c=product["temp_min_c"], temp_max_c=product["temp_max_c"],
        stability_budget_s=float(product["stability_budget_s"]),
        alarm_delay_s=float(product["alarm_delay_s"]),
        critical_min_c=product["critical_min_c"], critical_max_c=product["critical_max_c"],
        shock_limit_g=product["shock_limit_g"], light_sensitive=product["light_sensitive"],
    )


def lane_spec(lane: dict[str, Any]) -> LaneSpec:
    return LaneSpec(
        expected_transit_h=lane["expected_transit_h"], max_transit_h=lane["max_transit_h"],
        corridor_km=lane["corridor_km"],
        waypoints=tuple(
            Waypoint(w["name"], w["lat"], w["lon"], w["radius_km"], w["dwell_allowance_h"])
            for w in lane["waypoints"]
        ),
    )


def logger_state(
    logger_id: str, rows: Iterable[Sequence[Any]], ctx: SeriesContext
) -> LoggerState:
    """Fold one logger's readings (rows: logger_id, ts, temp_c, lat, lon, battery, light, shock)."""
    readings = (
        Sample(logger_id=r[0], ts=r[1], temp_c=r[2], lat=r[3], lon=r[4], battery_pct=r[5],
                light=r[6], shock_g=r[7])
        for r in rows
    )
    return advance(initial_state(logger_id, ctx), readings, ctx).state


def _logger_stats(s: LoggerState, mkt_applicable: bool) -> LoggerStats:
    return LoggerStats(
        logger_id=s.logger_id, reading_count=s.count, min_c=s.min_c, max_c=s.max_c,
        mean_c=s.temp_weight / s.mkt_weight_s if s.mkt_weight_s > 0 else None,
        mkt_c=mkt_from_sums(s.mkt_terms, s.mkt_weight_s) if mkt_applicable else None,
        time_out_of_range_s=s.out_us / US, time_high_s=s.high_us / US,
        time_low_s=s.low_us / US, time_unknown_s=s.unknown_us / US,
    )


def compute(
    readings: Sequence[Sequence[Any]], loggers: Sequence[dict[str, Any]],
    product: dict[str, Any], lane: dict[str, Any],
) -> dict[str, Any]:
    """Per-logger statistics and the shipment's, combined as the evaluation does: the worst."""
    profile, spec = product_profile(product), lane_spec(lane)
    rows_by_logger: dict[str, list[Sequence[Any]]] = {lg["logger_id"]: [] for lg in loggers}
    for r in readings:
        rows_by_logger.setdefault(r[0], []).append(r)
    gaps = {lg["logger_id"]: lg["max_gap_s"] for lg in loggers}
    states = [
        logger_state(lid, rows, SeriesContext(profile, spec, gaps.get(lid, 900.0)))
        for lid, rows in sorted(rows_by_logger.items())
    ]
    per = [_logger_stats(s, profile.mkt_applicable) for s in states]
    live = [s for s in states if s.count > 0]
    weight = sum(s.mkt_weight_s for s in live)
    used = max((s.out_us for s in live), default=0) / US
    mkts = [p.mkt_c for p in per if p.mkt_c is not None]
    budget = float(product["stability_budget_s"])
    return {
        "reading_count": sum(s.count for s in live),
        "min_c": min((s.min_c for s in live if s.min_c is not None), default=None),
        "max_c": max((s.max_c for s in live if s.max_c is not None), default=None),
        "mean_c": sum(s.temp_weight for s in live) / weight if weight > 0 else None,
        "mkt_c": max(mkts, default=None) if profile.mkt_applicable else None,
        "mkt_applicable": profile.mkt_applicable,
        "time_out_of_range_s": used,
        "time_unknown_s": max((s.unknown_us for s in live), default=0) / US,
        "stability_budget_s": budget,
        "stability_budget_used_s": used,
        "stability_budget_used_pct": 100.0 * used / budget if budget > 0 else None,
        "per_logger": [asdict(p) for p in per],
    }
