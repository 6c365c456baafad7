"""The pure evaluation core (stdlib only): rules of PRODUCT.md over immutable values, `now` given."""

from alerts.rules.advance import Advance, ExcursionRecord, OutOfOrder, advance, initial_state
from alerts.rules.conditions import Condition
from alerts.rules.evaluate import Evaluation, Memo, Summary, at_risk, evaluate
from alerts.rules.holdtime import run_outs
from alerts.rules.lifecycle import AlertView, Escalate, Open, Plan, Resolve, Update, reconcile
from alerts.rules.mkt import mkt_c
from alerts.rules.model import (
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
from alerts.rules.timeutil import NaiveDatetimeError

__all__ = [
    "Advance", "AlertView", "Condition", "Escalate", "EvalConfig", "Evaluation",
    "ExcursionRecord", "LaneSpec", "Leg", "LoggerState", "Memo", "NaiveDatetimeError", "Open",
    "OutOfOrder", "Plan", "ProductProfile", "Sample", "Resolve", "SeriesContext",
    "ShipmentEvent", "ShipmentSpec", "Summary", "Update", "Waypoint", "advance", "at_risk",
    "evaluate", "initial_state", "max_gap_for", "mkt_c", "needs_replay", "reconcile",
    "resume_point", "run_outs", "state_from_json", "state_to_json",
]
