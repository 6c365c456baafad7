"""One-line human messages for alerts (what a coordinator reads in a list or a webhook)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from alerts.rules import ProductProfile

KIND_LABELS = {
    "temperature_high": "Temperature above range",
    "temperature_low": "Temperature below range",
    "temperature_critical": "Temperature beyond a critical limit",
    "stability_budget": "Stability budget used",
    "hold_time_at_risk": "Hold time at risk",
    "hold_time_exceeded": "Qualified hold time exceeded",
    "signal_lost": "Logger signal lost",
    "dwell_exceeded": "Dwell allowance exceeded",
    "route_deviation": "Off the validated route",
    "light_exposure": "Light exposure (lid opened)",
    "shock": "Shock above limit",
    "battery_low": "Logger battery low",
}


def _t(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def alert_message(
    kind: str, since: datetime, details: Mapping[str, Any], product: ProductProfile | None
) -> str:
    label = KIND_LABELS.get(kind, kind)
    extra = ""
    if kind in ("temperature_high", "temperature_low", "temperature_critical") and product:
        extra = f" ({product.temp_min_c:g}–{product.temp_max_c:g} °C"
        if "peak_c" in details:
            extra += f", peak {details['peak_c']:g} °C"
        extra += ")"
    elif kind == "stability_budget":
        extra = f": {details.get('level_pct')} % reached"
    elif kind in ("hold_time_at_risk", "hold_time_exceeded"):
        extra = f": margin {details.get('margin_h')} h, deadline {details.get('hold_deadline')}"
    elif kind == "dwell_exceeded":
        extra = f" at {details.get('waypoint')} ({details.get('dwell_h')} h of " \
                f"{details.get('allowance_h')} h)"
    elif kind == "signal_lost":
        extra = f": {', '.join(details.get('loggers', []))}"
    elif kind == "route_deviation" and "max_deviation_km" in details:
        extra = f": up to {details['max_deviation_km']:.1f} km off"
    elif kind == "shock" and "max_shock_g" in details:
        extra = f": {details['max_shock_g']:g} g"
    elif kind == "battery_low" and "min_battery_pct" in details:
        extra = f": {details['min_battery_pct']:g} %"
    return f"{label}{extra} since {_t(since)}"
