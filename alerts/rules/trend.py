"""Rule 11's projection: when a logger's recent trend (or an ongoing excursion) breaches a limit."""

from __future__ import annotations

from collections.abc import Sequence

from alerts.rules.model import TEMPERATURE_HIGH, TEMPERATURE_LOW, EvalConfig, ProductProfile
from alerts.rules.state import LoggerState
from alerts.rules.timeutil import US


def slope_c_per_s(points: Sequence[tuple[int, float]], min_span_s: float) -> float | None:
    """Least-squares slope of (µs, °C) points; None below 4 points or the minimum span."""
    if len(points) < 4 or (points[-1][0] - points[0][0]) / US < min_span_s:
        return None
    t0 = points[0][0]
    xs = [(t - t0) / US for t, _ in points]
    ys = [v for _, v in points]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0.0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def projected_breach_us(
    state: LoggerState, product: ProductProfile, config: EvalConfig
) -> int | None:
    """Device time of the next breach if things go on as now, within the projection horizon.

    During an excursion: when the stability budget would be used up. In range: when the linear
    trend of the last readings crosses the nearer limit.
    """
    if state.last_us is None or state.last_temp is None:
        return None
    budget_us = int(product.stability_budget_s * US)
    if TEMPERATURE_HIGH in state.runs or TEMPERATURE_LOW in state.runs:
        return state.last_us + (budget_us - state.out_us) if state.out_us < budget_us else None
    slope = slope_c_per_s(state.trend, config.trend_min_span_s)
    if slope is None or slope == 0.0:
        return None
    if slope > 0:
        seconds = (product.temp_max_c - state.last_temp) / slope
    else:
        seconds = (state.last_temp - product.temp_min_c) / -slope
    if seconds < 0 or seconds > config.projection_horizon_s:
        return None
    return state.last_us + round(seconds) * US  # a projection is good to the second at best
