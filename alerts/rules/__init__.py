"""The pure evaluation core (stdlib only): rules of PRODUCT.md over immutable values, `now` given.

This module is its public API: everything outside `alerts/rules/` imports from here only
(tests/unit/test_architecture.py).
"""

from alerts.rules.advance import (
    Advance,
    ExcursionRecord,
    OutOfOrder,
    advance,
    initial_state,
    open_excursions,
)
from alerts.rules.conditions import Condition
from alerts.rules.evaluate import Evaluation, Memo, Summary, at_risk, evaluate, judged_states
from alerts.rules.figures import Figures, logger_figures, shipment_figures
from alerts.rules.geo import haversine_km
from alerts.rules.holdtime import run_outs
from alerts.rules.lifecycle import AlertView, Escalate, Open, Plan, Resolve, Update, reconcile
from alerts.rules.mkt import mkt_c
from alerts.rules.model import (
    TEMPERATURE_CRITICAL,
    TEMPERATURE_HIGH,
    TEMPERATURE_LOW,
    EvalConfig,
    LaneSpec,
    Leg,
    ProductProfile,
    Sample,
    SeriesContext,
    ShipmentEvent,
    ShipmentSpec,
    Waypoint,
    max_gap_for,
)
from alerts.rules.replay import needs_replay, resume_point
from alerts.rules.state import LoggerState, state_from_json, state_to_json
from alerts.rules.timeutil import NaiveDatetimeError, from_us, to_us

__all__ = [
    "TEMPERATURE_CRITICAL", "TEMPERATURE_HIGH", "TEMPERATURE_LOW",
    "Advance", "AlertView", "Condition", "Escalate", "EvalConfig", "Evaluation",
    "ExcursionRecord", "Figures", "LaneSpec", "Leg", "LoggerState", "Memo", "NaiveDatetimeError",
    "Open", "OutOfOrder", "Plan", "ProductProfile", "Resolve", "Sample", "SeriesContext",
    "ShipmentEvent", "ShipmentSpec", "Summary", "Update", "Waypoint", "advance", "at_risk",
    "evaluate", "from_us", "haversine_km", "initial_state", "judged_states", "logger_figures",
    "max_gap_for", "mkt_c", "needs_replay", "open_excursions", "reconcile", "resume_point",
    "run_outs", "shipment_figures", "state_from_json", "state_to_json", "to_us",
]
