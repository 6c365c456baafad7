"""Prometheus metrics of the evaluation engine (defined once per process; low-cardinality labels)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SHIPMENTS = Counter(
    "coldchain_evaluation_shipments_total", "Shipment evaluations", ["outcome"]
)
READINGS = Counter("coldchain_evaluation_readings_total", "Readings folded into evaluation state")
TRANSITIONS = Counter(
    "coldchain_alert_transitions_total", "Alert transitions written", ["type"]
)
BATCH_DURATION = Histogram(
    "coldchain_evaluation_batch_duration_seconds", "One evaluation transaction", ["trigger"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ERRORS = Counter("coldchain_evaluation_errors_total", "Failed evaluation cycles", ["stage"])
