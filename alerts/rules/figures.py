"""What a record of readings says by rules 2–5 — per logger, and for the shipment (the worst)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from alerts.rules.mkt import mkt_from_sums
from alerts.rules.model import ProductProfile
from alerts.rules.state import LoggerState
from alerts.rules.timeutil import US


@dataclass(frozen=True, slots=True)
class Figures:
    reading_count: int
    min_c: float | None
    max_c: float | None
    mean_c: float | None  # time-weighted by the time each reading holds (rule 2)
    mkt_c: float | None  # None where not applicable (frozen and cryogenic profiles)
    time_out_of_range_s: float
    time_high_s: float
    time_low_s: float
    time_unknown_s: float


def logger_figures(state: LoggerState, product: ProductProfile) -> Figures:
    """One logger's series, from its folded state."""
    return Figures(
        reading_count=state.count, min_c=state.min_c, max_c=state.max_c,
        mean_c=state.temp_weight / state.mkt_weight_s if state.mkt_weight_s > 0 else None,
        mkt_c=mkt_from_sums(state.mkt_terms, state.mkt_weight_s) if product.mkt_applicable else None,
        time_out_of_range_s=state.out_us / US, time_high_s=state.high_us / US,
        time_low_s=state.low_us / US, time_unknown_s=state.unknown_us / US,
    )


def shipment_figures(states: Sequence[LoggerState], product: ProductProfile) -> Figures:
    """Several loggers on one shipment: each judged alone, the shipment takes the worst (rule 2);
    counts add up, the mean weighs every logger's held time."""
    live = [s for s in states if s.count > 0]
    weight = sum(s.mkt_weight_s for s in live)
    mkts = [m for s in live if (m := mkt_from_sums(s.mkt_terms, s.mkt_weight_s)) is not None]
    return Figures(
        reading_count=sum(s.count for s in live),
        min_c=min((s.min_c for s in live if s.min_c is not None), default=None),
        max_c=max((s.max_c for s in live if s.max_c is not None), default=None),
        mean_c=sum(s.temp_weight for s in live) / weight if weight > 0 else None,
        mkt_c=max(mkts, default=None) if product.mkt_applicable else None,
        time_out_of_range_s=max((s.out_us for s in live), default=0) / US,
        time_high_s=max((s.high_us for s in live), default=0) / US,
        time_low_s=max((s.low_us for s in live), default=0) / US,
        time_unknown_s=max((s.unknown_us for s in live), default=0) / US,
    )
