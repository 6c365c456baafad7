"""Report statistics from the complete reading record, judged by the engine's own rules and
spec (alerts/specs.py): the figures a QP reads are the ones the engine judged at that moment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from alerts.rules import (
    LoggerState,
    ShipmentSpec,
    advance,
    initial_state,
    judged_states,
    logger_figures,
    shipment_figures,
)
from alerts.specs import samples_by_name


def logger_states(readings: Sequence[Any], spec: ShipmentSpec) -> dict[str, LoggerState]:
    """Each of the shipment's loggers folded over its readings (rows with the Sample's fields by
    name, in device-time order); readings of loggers the engine does not judge are left out."""
    rows: dict[str, list[Any]] = {logger_id: [] for logger_id, _ in spec.max_gap_s}
    for r in readings:
        if r.logger_id in rows:
            rows[r.logger_id].append(r)
    states = {}
    for logger_id, mine in rows.items():
        ctx = spec.context(logger_id)
        folded, _ = samples_by_name(mine)
        states[logger_id] = advance(initial_state(logger_id, ctx), folded, ctx).state
    return states


def compute(readings: Sequence[Any], spec: ShipmentSpec, now: datetime) -> dict[str, Any]:
    """Per-logger statistics and the shipment's, as the evaluation judges them at `now` (each
    logger's latest reading held as rule 2 says, the shipment taking the worst)."""
    folded = logger_states(readings, spec)
    judged = {s.logger_id: s for s in judged_states(spec, folded, now)}
    per = {lid: logger_figures(judged.get(lid, state), spec.product) for lid, state in folded.items()}
    ship = shipment_figures(list(judged.values()), spec.product)
    budget = spec.product.stability_budget_s
    used = ship.time_out_of_range_s
    return {
        "reading_count": ship.reading_count,
        "min_c": ship.min_c, "max_c": ship.max_c, "mean_c": ship.mean_c, "mkt_c": ship.mkt_c,
        "mkt_applicable": spec.product.mkt_applicable,
        "time_out_of_range_s": used,
        "time_unknown_s": ship.time_unknown_s,
        "stability_budget_s": budget,
        "stability_budget_used_s": used,
        "stability_budget_used_pct": 100.0 * used / budget if budget > 0 else None,
        "per_logger": [{"logger_id": lid, **asdict(per[lid])} for lid in sorted(per)],
    }
