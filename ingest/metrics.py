"""Prometheus metrics of the ingest worker, defined once per process (names carry their units)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from ingest.batch import PROCESSING_ERROR
from ingest.payload import REASONS

MESSAGES = Counter(
    "coldchain_ingest_messages_total", "MQTT messages taken off the broker", ["kind"]
)
READINGS_RECEIVED = Counter(
    "coldchain_ingest_readings_received_total", "Valid readings parsed from messages"
)
READINGS_STORED = Counter("coldchain_ingest_readings_stored_total", "Readings newly stored")
DUPLICATES = Counter(
    "coldchain_ingest_duplicates_total", "Readings already stored with the same values (redeliveries)"
)
CONFLICTS = Counter(
    "coldchain_ingest_conflicts_total",
    "Readings whose key (logger_id, ts) is stored with different values: kept out, quarantined",
)
REJECTED = Counter(
    "coldchain_ingest_rejected_total", "Inputs newly quarantined in ingest_rejections", ["reason"]
)
BATCH_READINGS = Histogram(
    "coldchain_ingest_batch_readings", "Readings per committed batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000),
)
BATCH_MESSAGES = Histogram(
    "coldchain_ingest_batch_messages", "Messages per committed batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
COMMIT_SECONDS = Histogram(
    "coldchain_ingest_commit_duration_seconds", "Time to write and commit one batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LAG_SECONDS = Histogram(
    "coldchain_ingest_lag_seconds",
    "Device time of a stored reading to its commit (sampled: up to 64 readings per batch)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400),
)
RETRIES = Counter(
    "coldchain_ingest_write_retries_total", "Batch writes retried", ["cause"]
)
QUEUE = Gauge("coldchain_ingest_queue_messages", "Messages received but not yet taken into a batch")
BUFFER_BYTES = Gauge(
    "coldchain_ingest_buffer_bytes",
    "Bytes of messages received and not yet acknowledged (bounded by COLDCHAIN_INGEST_BUFFER_BYTES)",
)
PAUSES = Counter(
    "coldchain_ingest_read_pauses_total", "Times reading from the broker paused on a full buffer"
)
CONNECTED = Gauge("coldchain_ingest_broker_connected", "1 while connected to the MQTT broker")
DISCONNECTS = Counter(
    "coldchain_ingest_broker_disconnects_total", "Connections to the MQTT broker that ended"
)

for _reason in (*REASONS, PROCESSING_ERROR):
    REJECTED.labels(_reason)
for _kind in ("telemetry", "status", "other"):
    MESSAGES.labels(_kind)
