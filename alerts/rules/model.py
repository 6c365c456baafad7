"""Input values of the evaluation: readings, product and lane profiles, shipment, configuration."""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime

from alerts.rules.timeutil import require_aware

# Alert kinds (CONTRACT.md) and how each behaves once its condition goes away.
TEMPERATURE_HIGH = "temperature_high"
TEMPERATURE_LOW = "temperature_low"
TEMPERATURE_CRITICAL = "temperature_critical"
STABILITY_BUDGET = "stability_budget"
HOLD_TIME_AT_RISK = "hold_time_at_risk"
HOLD_TIME_EXCEEDED = "hold_time_exceeded"
SIGNAL_LOST = "signal_lost"
DWELL_EXCEEDED = "dwell_exceeded"
ROUTE_DEVIATION = "route_deviation"
LIGHT_EXPOSURE = "light_exposure"
SHOCK = "shock"
BATTERY_LOW = "battery_low"
ALL_KINDS = (
    TEMPERATURE_HIGH, TEMPERATURE_LOW, TEMPERATURE_CRITICAL, STABILITY_BUDGET, HOLD_TIME_AT_RISK,
    HOLD_TIME_EXCEEDED, SIGNAL_LOST, DWELL_EXCEEDED, ROUTE_DEVIATION, LIGHT_EXPOSURE, SHOCK,
    BATTERY_LOW,
)
# Kinds judged on "now" only (no device-time history): matched to their one live alert.
CURRENT_KINDS = frozenset({HOLD_TIME_AT_RISK, HOLD_TIME_EXCEEDED, SIGNAL_LOST})
# Kinds that cannot clear by themselves: a person resolves them with a reason.
MANUAL_KINDS = frozenset({STABILITY_BUDGET, HOLD_TIME_EXCEEDED, SHOCK})
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}

EVENT_DEPARTED = "departed"
EVENT_CUSTOMS_HOLD = "customs_hold"
EVENT_CUSTOMS_RELEASED = "customs_released"
EVENT_DELIVERED = "delivered"
EVENT_RECEIVED = "received"
# Contingency events (rule 6): the hold clock restarts; the shipment goes on another lane.
EVENT_RECHARGED = "recharged"
EVENT_REROUTED = "rerouted"


@dataclass(frozen=True, slots=True)
class Sample:
    """One logger measurement at its own device time `ts`; `received_at` is server time."""

    logger_id: str
    ts: datetime
    temp_c: float
    lat: float | None = None
    lon: float | None = None
    battery_pct: float | None = None
    light: bool | None = None
    shock_g: float | None = None
    received_at: datetime | None = None

    def __post_init__(self) -> None:
        require_aware(self.ts, "Sample.ts")
        if self.received_at is not None:
            require_aware(self.received_at, "Sample.received_at")


@dataclass(frozen=True, slots=True)
class ProductProfile:
    temp_min_c: float
    temp_max_c: float
    stability_budget_s: float
    alarm_delay_s: float = 0.0
    critical_min_c: float | None = None
    critical_max_c: float | None = None
    shock_limit_g: float | None = None
    light_sensitive: bool = True

    def __post_init__(self) -> None:
        if not self.temp_min_c < self.temp_max_c:
            raise ValueError("temp_min_c must be below temp_max_c")
        if self.alarm_delay_s < 0 or self.stability_budget_s < 0:
            raise ValueError("alarm delay and stability budget must not be negative")

    def critical_breach(self, value: float) -> float:
        """How far `value` lies beyond the critical limit it crosses (negative: within both)."""
        over = value - self.critical_max_c if self.critical_max_c is not None else -math.inf
        under = self.critical_min_c - value if self.critical_min_c is not None else -math.inf
        return max(over, under)

    @property
    def mkt_applicable(self) -> bool:
        """MKT is reported for controlled-room and refrigerated products only.

        A profile whose upper limit is at or below 0 °C (frozen, dry ice, LN2) gets null: the
        Arrhenius weighting of USP <1079.2> is not meaningful for frozen material.
        """
        return self.temp_max_c > 0.0


@dataclass(frozen=True, slots=True)
class Waypoint:
    name: str
    lat: float
    lon: float
    radius_km: float
    dwell_allowance_h: float


@dataclass(frozen=True, slots=True)
class LaneSpec:
    """A validated route; `origin`/`destination` are (lat, lon) when the sites are located."""

    expected_transit_h: float
    max_transit_h: float
    corridor_km: float
    waypoints: tuple[Waypoint, ...] = ()
    origin: tuple[float, float] | None = None
    destination: tuple[float, float] | None = None

    def path(self) -> tuple[tuple[float, float], ...]:
        """The polyline origin → waypoints → destination (only the known points)."""
        points = [(w.lat, w.lon) for w in self.waypoints]
        if self.origin is not None:
            points.insert(0, self.origin)
        if self.destination is not None:
            points.append(self.destination)
        return tuple(points)


@dataclass(frozen=True, slots=True)
class Leg:
    """A lane the shipment travels from `start` on (a reroute's time)."""

    start: datetime
    lane: LaneSpec

    def __post_init__(self) -> None:
        require_aware(self.start, "Leg.start")


@dataclass(frozen=True, slots=True)
class EvalConfig:
    """Tuned numbers of the evaluation (documented in alerts/README.md)."""

    # An alert episode ends only after the condition has been clear this long (device time),
    # and never sooner than the series' max gap (`SeriesContext.clear_s`): a value hovering at a
    # limit gives one episode, not a storm, whether the logger reports every minute or hour.
    clear_s: float = 900.0
    # A position outside the corridor must persist this long (known time) before it alarms:
    # a single GPS outlier is not a deviation.
    route_delay_s: float = 600.0
    battery_low_pct: float = 20.0
    battery_clear_pct: float = 25.0
    # hold_time_at_risk resolves only once the margin is this far above the safety margin.
    hold_risk_clear_s: float = 3600.0
    escalation_after_s: float = 900.0
    checkpoint_every: int = 2000
    # Projected breach (rule 11): least squares over the last readings since the last excursion
    # edge; only a breach within the horizon is reported (a longer extrapolation is noise).
    trend_points: int = 12
    trend_window_s: float = 3600.0
    trend_min_span_s: float = 1200.0
    projection_horizon_s: float = 12 * 3600.0
    # The time-driven sweep looks at every active shipment at least this often.
    max_check_interval_s: float = 300.0


@dataclass(frozen=True, slots=True)
class SeriesContext:
    """What one logger's series is judged against; a change of it invalidates saved state."""

    product: ProductProfile
    lane: LaneSpec  # the lane of registration
    max_gap_s: float
    config: EvalConfig = field(default_factory=EvalConfig)
    # Reroutes in time order: from each leg's start its lane judges route and dwell.
    reroutes: tuple[Leg, ...] = ()

    def __post_init__(self) -> None:
        if self.max_gap_s <= 0:
            raise ValueError("max_gap_s must be positive")
        if any(b.start <= a.start for a, b in zip(self.reroutes, self.reroutes[1:], strict=False)):
            raise ValueError("reroutes must be in strictly increasing time order")

    @property
    def clear_s(self) -> float:
        """How long a condition must stay clear before its episode ends (rule 10).

        At least the max gap: one reading back in range vouches for no longer than that (rule 2),
        so at an hourly cadence a single in-range reading between two out-of-range ones is the
        same hovering episode, as three in a row at a one-minute cadence within 15 min are.
        """
        return max(self.config.clear_s, self.max_gap_s)

    def fingerprint(self) -> str:
        return _fingerprint(self)


# Bumped whenever the rules judge the same readings differently: saved states of an older
# version no longer match any context and are judged again from the first reading.
RULES_VERSION = 2


@functools.lru_cache(maxsize=4096)
def _fingerprint(ctx: SeriesContext) -> str:
    c = ctx.config
    relevant: tuple[object, ...] = (
        RULES_VERSION, ctx.product, ctx.lane, ctx.max_gap_s, c.clear_s, c.route_delay_s,
        c.battery_low_pct, c.battery_clear_pct, c.trend_points, c.trend_window_s)
    if ctx.reroutes:  # appended only when present: states of shipments never rerouted stay valid
        relevant += (ctx.reroutes,)
    return hashlib.sha256(repr(relevant).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ShipmentEvent:
    """A custody event; a `rerouted` one carries the lane the shipment travels from `at` on."""

    type: str
    at: datetime
    lane: LaneSpec | None = None

    def __post_init__(self) -> None:
        require_aware(self.at, "ShipmentEvent.at")
        if (self.type == EVENT_REROUTED) != (self.lane is not None):
            raise ValueError("a rerouted event, and only one, carries its new lane")


@dataclass(frozen=True, slots=True)
class ShipmentSpec:
    """A shipment as the evaluation sees it. `max_gap_s` maps each logger to its max gap."""

    packed_at: datetime
    qualified_hold_h: float
    product: ProductProfile
    lane: LaneSpec
    max_gap_s: tuple[tuple[str, float], ...]
    events: tuple[ShipmentEvent, ...] = ()
    departed_at: datetime | None = None
    delivered_at: datetime | None = None
    received_at: datetime | None = None
    safety_margin_h: float = 24.0
    config: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        require_aware(self.packed_at, "packed_at")
        for value, what in ((self.departed_at, "departed_at"), (self.delivered_at, "delivered_at"),
                            (self.received_at, "received_at")):
            if value is not None:
                require_aware(value, what)

    def context(self, logger_id: str) -> SeriesContext:
        gaps = dict(self.max_gap_s)
        return SeriesContext(self.product, self.lane, gaps[logger_id], self.config,
                             self.reroutes)

    @property
    def reroutes(self) -> tuple[Leg, ...]:
        """The lanes taken by reroutes, in time order (of two at the same time, the later
        recorded)."""
        legs: dict[datetime, Leg] = {}
        for e in sorted(self.events, key=lambda e: e.at):
            if e.type == EVENT_REROUTED and e.lane is not None:
                legs[e.at] = Leg(e.at, e.lane)
        return tuple(legs.values())

    @property
    def clear_s(self) -> float:
        """The shipment's clear time: the longest of its loggers' (episodes merge across them)."""
        return max([self.config.clear_s, *(gap for _, gap in self.max_gap_s)])


# Kinds whose peak is worse the lower it is; a critical peak is worse the farther it lies beyond
# the limit it crosses (below a low one or above a high one); all others: the higher.
_LOW_IS_WORSE = frozenset({TEMPERATURE_LOW, BATTERY_LOW})


def peak_score(kind: str, value: float, product: ProductProfile) -> float:
    """How bad a peak value is for `kind` (higher is worse), in the direction of the breach."""
    if kind == TEMPERATURE_CRITICAL:
        return product.critical_breach(value)
    return -value if kind in _LOW_IS_WORSE else value


def max_gap_for(reporting_interval_s: float, shipment_max_gap_s: float | None) -> float:
    """Rule 2: the shipment's max gap, by default three reporting intervals of the logger."""
    return float(shipment_max_gap_s) if shipment_max_gap_s else 3.0 * reporting_interval_s
