"""Shipment-level conditions: per-logger episodes merged (the shipment takes the worst)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts.rules.model import (
    BATTERY_LOW,
    DWELL_EXCEEDED,
    HOLD_TIME_AT_RISK,
    HOLD_TIME_EXCEEDED,
    LIGHT_EXPOSURE,
    ROUTE_DEVIATION,
    SHOCK,
    SIGNAL_LOST,
    TEMPERATURE_CRITICAL,
    TEMPERATURE_HIGH,
    TEMPERATURE_LOW,
    ProductProfile,
    peak_score,
)
from alerts.rules.state import Episode
from alerts.rules.timeutil import from_us, opt_from_us

SEVERITY = {
    TEMPERATURE_HIGH: "warning", TEMPERATURE_LOW: "warning", TEMPERATURE_CRITICAL: "critical",
    LIGHT_EXPOSURE: "warning", ROUTE_DEVIATION: "warning", BATTERY_LOW: "warning",
    SHOCK: "warning", DWELL_EXCEEDED: "warning", SIGNAL_LOST: "warning",
    HOLD_TIME_AT_RISK: "warning", HOLD_TIME_EXCEEDED: "critical",
}
# What an episode's peak means, per kind (a key of the alert's details).
PEAK_NAME = {
    TEMPERATURE_HIGH: "peak_c", TEMPERATURE_LOW: "peak_c", TEMPERATURE_CRITICAL: "peak_c",
    ROUTE_DEVIATION: "max_deviation_km", BATTERY_LOW: "min_battery_pct", SHOCK: "max_shock_g",
}


@dataclass(frozen=True, slots=True)
class Condition:
    """One episode of one condition on the shipment, as the alert lifecycle sees it.

    `start` is device time (the alert's `condition_since`); `cleared` means the condition has
    been gone for the clear time (or the shipment was delivered after it ended). `peak_rank`
    orders peaks of one kind: higher is worse, in the direction of the breach.
    """

    kind: str
    start: datetime
    severity: str
    end: datetime | None = None
    cleared: bool = False
    retroactive: bool = False
    last_evidence: datetime | None = None
    count: int = 1
    loggers: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    peak_rank: float | None = None


def merge_logger_episodes(
    kind: str,
    per_logger: Sequence[tuple[str, Episode]],
    clear_us: int,
    *,
    delivered: bool,
    product: ProductProfile,
) -> tuple[Condition, ...]:
    """Union of the loggers' episodes: overlapping or closer than the clear time → one."""
    ordered = sorted(per_logger, key=lambda item: (item[1].start, item[0]))
    groups: list[list[tuple[str, Episode]]] = []
    reach: int | None = None  # end of the current group (None: still open)
    for logger_id, ep in ordered:
        if groups and (reach is None or ep.start - reach < clear_us):
            groups[-1].append((logger_id, ep))
            reach = None if reach is None or ep.end is None else max(reach, ep.end)
        else:
            groups.append([(logger_id, ep)])
            reach = ep.end
    return tuple(_condition(kind, g, delivered, product) for g in groups)


def _condition(
    kind: str, group: list[tuple[str, Episode]], delivered: bool, product: ProductProfile,
) -> Condition:
    eps = [ep for _, ep in group]
    first = min(eps, key=lambda e: e.alarm_us)
    ends = [e.end for e in eps]
    end = None if any(e is None for e in ends) else max(e for e in ends if e is not None)
    cleared = end is not None and (all(e.confirmed for e in eps) or delivered)
    # The worst value across loggers, in the direction of the breach (rule 2).
    peak = max((e.peak for e in eps if e.peak is not None),
               key=lambda v: peak_score(kind, v, product), default=None)
    details: dict[str, Any] = {"occurrences": sum(e.count for e in eps),
                               "loggers": sorted({lid for lid, _ in group})}
    if kind in PEAK_NAME and peak is not None:
        details[PEAK_NAME[kind]] = peak
    details["alarm_at"] = from_us(first.alarm_us).isoformat()
    return Condition(
        kind=kind, start=from_us(min(e.start for e in eps)), severity=SEVERITY[kind],
        end=opt_from_us(end), cleared=cleared, retroactive=first.late,
        last_evidence=from_us(max(e.last_us for e in eps)),
        count=sum(e.count for e in eps), loggers=tuple(sorted({lid for lid, _ in group})),
        details=details, peak_rank=None if peak is None else peak_score(kind, peak, product),
    )
