"""Evaluation results: per-shipment state (the dashboard reads it), excursions, alerts and their events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models.base import Base, created_at_column, new_id

ALERT_KINDS = (
    "temperature_high",
    "temperature_low",
    "temperature_critical",
    "stability_budget",
    "hold_time_at_risk",
    "hold_time_exceeded",
    "signal_lost",
    "dwell_exceeded",
    "route_deviation",
    "light_exposure",
    "shock",
    "battery_low",
)
SEVERITIES = ("info", "warning", "critical")
ALERT_STATES = ("open", "escalated", "acknowledged", "resolved")
ALERT_EVENT_TYPES = ("opened", "updated", "escalated", "acknowledged", "resolved")


class ShipmentState(Base):
    """Maintained evaluation summary of one shipment: answers the dashboard without scanning readings."""

    __tablename__ = "shipment_state"
    shipment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), primary_key=True
    )
    evaluated_until: Mapped[datetime | None]
    last_reading_ts: Mapped[datetime | None]
    last_temp_c: Mapped[float | None] = mapped_column(Float)
    last_lat: Mapped[float | None] = mapped_column(Float)
    last_lon: Mapped[float | None] = mapped_column(Float)
    reading_count: Mapped[int] = mapped_column(BigInteger, default=0)
    min_c: Mapped[float | None] = mapped_column(Float)
    max_c: Mapped[float | None] = mapped_column(Float)
    mean_c: Mapped[float | None] = mapped_column(Float)
    mkt_c: Mapped[float | None] = mapped_column(Float)
    time_out_of_range_s: Mapped[float] = mapped_column(Float, default=0.0)
    time_unknown_s: Mapped[float] = mapped_column(Float, default=0.0)
    stability_budget_used_s: Mapped[float] = mapped_column(Float, default=0.0)
    hold_deadline: Mapped[datetime | None]
    expected_arrival: Mapped[datetime | None]
    margin_h: Mapped[float | None] = mapped_column(Float)
    projected_breach_at: Mapped[datetime | None]
    at_risk: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    open_alerts: Mapped[int] = mapped_column(Integer, default=0)
    open_critical_alerts: Mapped[int] = mapped_column(Integer, default=0)
    # Serialised incremental evaluator state (per logger), so a batch costs O(batch).
    engine_state: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # When a time-driven condition (signal lost, hold time, dwell, escalation) may next change:
    # the periodic sweep looks only at rows that are due. Null: nothing left to watch.
    next_check_at: Mapped[datetime | None] = mapped_column(index=True)
    updated_at: Mapped[datetime] = created_at_column()


class EvaluationPending(Base):
    """Work the evaluation engine has taken off `evaluation_queue` but not finished.

    Claiming moves a queue row here in a short transaction, so ingest's queue upsert never waits
    on an evaluation; the row survives a crash and is deleted only when the evaluation that saw
    this `version` commits.
    """

    __tablename__ = "evaluation_pending"
    shipment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), primary_key=True
    )
    dirty_from: Mapped[datetime]
    version: Mapped[int] = mapped_column(BigInteger, default=1, server_default="1")
    claimed_at: Mapped[datetime] = created_at_column()


class EvaluationCheckpoint(Base):
    """A logger's evaluation state after its first readings up to `upto_ts` (replay start).

    Late data before the newest device time is re-evaluated from the latest checkpoint before it
    instead of from the beginning of the shipment.
    """

    __tablename__ = "evaluation_checkpoints"
    shipment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), primary_key=True
    )
    logger_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    upto_ts: Mapped[datetime] = mapped_column(primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()


class Excursion(Base):
    __tablename__ = "excursions"
    __table_args__ = (Index("ix_excursions_shipment_start", "shipment_id", "start"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    shipment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"))
    logger_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    start: Mapped[datetime]
    end: Mapped[datetime | None]
    # Rule 3: start = first reading in the condition, end = first reading out of it (null while
    # ongoing); duration_s = time in the condition by sample-and-hold; unknown_s = the part of
    # [start, end] past the max gap (neither in nor out of range).
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    unknown_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    peak_c: Mapped[float | None] = mapped_column(Float)
    # It lasted the alarm delay (or crossed a critical limit): it raised or joined an alert.
    alarmed: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    retroactive: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = created_at_column()


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        # One live alert per (shipment, condition): the database enforces the dedup rule.
        Index(
            "uq_alerts_one_live_per_kind",
            "shipment_id",
            "kind",
            unique=True,
            postgresql_where=text("state <> 'resolved'"),
        ),
        Index("ix_alerts_state_opened_at", "state", "opened_at"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    shipment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[datetime]
    condition_since: Mapped[datetime]
    retroactive: Mapped[bool] = mapped_column(Boolean, default=False)
    message: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    last_evidence_at: Mapped[datetime | None]
    # Since when the alert has had its current severity (escalation waits from there).
    severity_since: Mapped[datetime | None]
    # Alarmed occurrences merged into this episode (a value flapping at a limit).
    occurrences: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Temperature kinds: the worst value across loggers in the direction of the breach.
    peak_c: Mapped[float | None] = mapped_column(Float)
    # When a new episode or a worse severity put an acknowledged alert back to open.
    reopened_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    ack_comment: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolution: Mapped[str | None] = mapped_column(Text)


class AlertEvent(Base):
    """Every alert transition, in order: the source of webhook deliveries (transactional outbox)."""

    __tablename__ = "alert_events"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    alert_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = created_at_column()
    actor: Mapped[str | None] = mapped_column(String(100))
    comment: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
