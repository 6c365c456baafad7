"""Prometheus metrics of webhook delivery, defined once per process (low-cardinality labels only)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ATTEMPTS = Counter(
    "coldchain_webhook_attempts_total", "Webhook POST attempts by outcome",
    ["outcome"],  # success, http_error, timeout, connection_error, refused, error
)
DELIVERIES = Counter(
    "coldchain_webhook_deliveries_total", "Webhook deliveries that reached a final state",
    ["outcome"],  # delivered, failed
)
ATTEMPT_DURATION = Histogram(
    "coldchain_webhook_delivery_duration_seconds", "Latency of one webhook POST attempt",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_DEPTH = Gauge(
    "coldchain_webhook_queue_depth", "Pending webhook deliveries of enabled subscriptions"
)
OLDEST_PENDING_AGE = Gauge(
    "coldchain_webhook_oldest_pending_age_seconds", "Age of the oldest pending webhook delivery"
)
ENDPOINTS_DISABLED = Counter(
    "coldchain_webhook_endpoints_disabled_total", "Subscriptions disabled after failing for long"
)
CYCLE_ERRORS = Counter(
    "coldchain_webhook_cycle_errors_total", "Delivery cycles that failed (e.g. database unreachable)"
)
