"""Prometheus metrics of mail delivery, defined once per process (named like the webhook ones)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ATTEMPTS = Counter(
    "coldchain_mail_attempts_total", "SMTP send attempts by outcome",
    ["outcome"],  # sent, rejected, deferred, timeout, connection_error, error
)
DELIVERIES = Counter(
    "coldchain_mail_deliveries_total", "Mails that reached a final state",
    ["outcome"],  # delivered, failed, cancelled
)
ATTEMPT_DURATION = Histogram(
    "coldchain_mail_delivery_duration_seconds", "Latency of one SMTP send attempt",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_DEPTH = Gauge("coldchain_mail_queue_depth", "Pending mails")
OLDEST_PENDING_AGE = Gauge(
    "coldchain_mail_oldest_pending_age_seconds", "Age of the oldest pending mail"
)
CYCLE_ERRORS = Counter(
    "coldchain_mail_cycle_errors_total", "Mail delivery cycles that failed (e.g. database unreachable)"
)
