"""MQTT ingest: telemetry from loggers into a clean, complete, deduplicated reading history."""
