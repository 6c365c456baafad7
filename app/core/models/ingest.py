"""Telemetry: readings (time-partitioned), quarantined input, the hand-off queue to evaluation."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models.base import Base, created_at_column


class Reading(Base):
    """One logger's measurement at one device time; identity (logger_id, ts).

    Range-partitioned by month on ts (see migrations); the partitions are not in this metadata.
    """

    __tablename__ = "readings"
    __table_args__ = (
        Index("ix_readings_shipment_ts", "shipment_id", "ts"),
        {"postgresql_partition_by": "RANGE (ts)"},
    )
    logger_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    shipment_id: Mapped[uuid.UUID | None]
    temp_c: Mapped[float] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    battery_pct: Mapped[float | None] = mapped_column(Float)
    light: Mapped[bool | None] = mapped_column(Boolean)
    shock_g: Mapped[float | None] = mapped_column(Float)
    humidity_pct: Mapped[float | None] = mapped_column(Float)
    ln2_level_pct: Mapped[float | None] = mapped_column(Float)
    seq: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime]
    # SHA-256 of the MQTT payload the reading came in (ALCOA+: traceable to what the logger sent).
    payload_sha256: Mapped[bytes | None] = mapped_column(LargeBinary)


class IngestRejection(Base):
    """Quarantined input: never silently dropped, kept with its reason."""

    __tablename__ = "ingest_rejections"
    __table_args__ = (Index("ix_ingest_rejections_received_at", "received_at"),)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    received_at: Mapped[datetime] = created_at_column()
    topic: Mapped[str] = mapped_column(Text)
    logger_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(64), index=True)
    detail: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    payload_size: Mapped[int] = mapped_column(Integer)
    payload_sha256: Mapped[bytes] = mapped_column(LargeBinary)
    reading_index: Mapped[int | None] = mapped_column(Integer)
    # SHA-256 of (topic, payload SHA-256, reading index): the same input redelivered is quarantined once.
    dedup_key: Mapped[bytes | None] = mapped_column(LargeBinary, unique=True)


class IngestMessage(Base):
    """The raw bytes of each message that brought a new reading (ALCOA+: the original record).

    Append-only with a BRIN index on receive time (inserts stay cheap however large it grows;
    retention is a range delete). A reading finds its message by (received_at, payload_sha256),
    both stored on the reading. No primary key in the database: a key would cost an index entry
    per message, and a message is never stored twice (only messages with new readings are kept).
    """

    __tablename__ = "ingest_messages"
    __table_args__ = (
        Index("ix_ingest_messages_received_at", "received_at", postgresql_using="brin"),
    )
    __mapper_args__ = {"primary_key": ["received_at", "payload_sha256", "topic"]}
    received_at: Mapped[datetime]
    payload_sha256: Mapped[bytes] = mapped_column(LargeBinary)
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class EvaluationQueue(Base):
    """Shipments whose record changed: ingest upserts LEAST(dirty_from) in its own transaction."""

    __tablename__ = "evaluation_queue"
    shipment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), primary_key=True
    )
    dirty_from: Mapped[datetime]
    enqueued_at: Mapped[datetime] = created_at_column()
