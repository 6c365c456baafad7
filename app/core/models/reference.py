"""Reference data: sites, product and packaging profiles, lanes, loggers, shipments."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.models.base import Base, created_at_column, new_id

SHIPMENT_STATUSES = ("packed", "in_transit", "customs_hold", "delivered", "received")
EVENT_TYPES = ("departed", "customs_hold", "customs_released", "delivered", "received",
               "recharged", "rerouted")
RELEASE_DECISIONS = ("released", "rejected")


class Site(Base):
    __tablename__ = "sites"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[datetime] = created_at_column()


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (CheckConstraint("temp_min_c < temp_max_c", name="range"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    temp_min_c: Mapped[float] = mapped_column(Float)
    temp_max_c: Mapped[float] = mapped_column(Float)
    critical_min_c: Mapped[float | None] = mapped_column(Float)
    critical_max_c: Mapped[float | None] = mapped_column(Float)
    alarm_delay_s: Mapped[int] = mapped_column(Integer, default=0)
    stability_budget_s: Mapped[int] = mapped_column(Integer)
    shock_limit_g: Mapped[float | None] = mapped_column(Float)
    light_sensitive: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = created_at_column()


class Packaging(Base):
    __tablename__ = "packaging"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    qualified_hold_h: Mapped[float] = mapped_column(Float)
    temp_class: Mapped[str | None] = mapped_column(String(40))
    # Qualified through this day (UTC): a shipment packed after it is refused.
    requalified_until: Mapped[date | None]
    created_at: Mapped[datetime] = created_at_column()


class Lane(Base):
    __tablename__ = "lanes"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    origin_site_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sites.id"), index=True)
    destination_site_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sites.id"), index=True)
    expected_transit_h: Mapped[float] = mapped_column(Float)
    max_transit_h: Mapped[float] = mapped_column(Float)
    corridor_km: Mapped[float] = mapped_column(Float)
    # Document kinds a shipment on this lane needs before departure (e.g. import_license).
    required_documents: Mapped[list[str]] = mapped_column(
        ARRAY(String(64)), default=list, server_default="{}")
    created_at: Mapped[datetime] = created_at_column()
    waypoints: Mapped[list[LaneWaypoint]] = relationship(
        order_by="LaneWaypoint.position", lazy="raise", cascade="all, delete-orphan"
    )


class LaneWaypoint(Base):
    __tablename__ = "lane_waypoints"
    __table_args__ = (UniqueConstraint("lane_id", "position"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    lane_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lanes.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    radius_km: Mapped[float] = mapped_column(Float)
    dwell_allowance_h: Mapped[float] = mapped_column(Float)


class Logger(Base):
    __tablename__ = "loggers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reporting_interval_s: Mapped[int] = mapped_column(Integer, default=300)
    # Maintained by ingest: connection status (retained status topic) and what arrived last.
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    status_at: Mapped[datetime | None]
    last_received_at: Mapped[datetime | None]
    last_reading_ts: Mapped[datetime | None]
    last_seq: Mapped[int | None] = mapped_column(BigInteger)
    seq_gaps: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = created_at_column()


class Shipment(Base):
    __tablename__ = "shipments"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    reference: Mapped[str] = mapped_column(String(100), unique=True)
    # The lane it is on now (a `rerouted` event moves it) and the lane it was registered on.
    lane_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lanes.id"), index=True)
    planned_lane_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lanes.id"), index=True)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"))
    packaging_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("packaging.id"))
    # Denormalised from the lane so site scoping is one indexed comparison.
    origin_site_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sites.id"), index=True)
    destination_site_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sites.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="packed", index=True)
    packed_at: Mapped[datetime]
    departed_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    recharged_at: Mapped[datetime | None]  # the latest recharge: the hold clock restarted
    safety_margin_h: Mapped[float] = mapped_column(Float, default=24.0)
    max_gap_s: Mapped[int | None] = mapped_column(Integer)
    release_decision: Mapped[str | None] = mapped_column(String(16))
    release_reason: Mapped[str | None] = mapped_column(Text)
    released_by: Mapped[str | None] = mapped_column(String(100))
    released_at: Mapped[datetime | None]
    # The decision's electronic signature manifest (21 CFR 11.50): who (by name and email, as
    # they were when signing), when, and what the signature means; linked to the account (11.70).
    signer_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    signer_name: Mapped[str | None] = mapped_column(String(200))
    signer_email: Mapped[str | None] = mapped_column(String(254))
    signed_at: Mapped[datetime | None]
    signature_meaning: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class ShipmentLogger(Base):
    """A logger's assignment to a shipment over a device-time interval [assigned_from, assigned_until)."""

    __tablename__ = "shipment_loggers"
    __table_args__ = (Index("ix_shipment_loggers_logger_window", "logger_id", "assigned_from"),)
    shipment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), primary_key=True
    )
    logger_id: Mapped[str] = mapped_column(ForeignKey("loggers.id"), primary_key=True)
    assigned_from: Mapped[datetime]
    assigned_until: Mapped[datetime | None]


class ShipmentEvent(Base):
    __tablename__ = "shipment_events"
    __table_args__ = (Index("ix_shipment_events_shipment_at", "shipment_id", "at"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    shipment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    lane_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("lanes.id"))  # `rerouted` onto
    note: Mapped[str | None] = mapped_column(Text)
    # `departed` while not ready: the coordinator's reason for departing anyway, and what was
    # missing or expired at that moment.
    override_reason: Mapped[str | None] = mapped_column(Text)
    override_unready: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    recorded_by: Mapped[str | None] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = created_at_column()
    # Recorded at a time before readings already stored for the shipment (a coordinator's entry).
    late_entry: Mapped[bool] = mapped_column(default=False, server_default="false")
    # A coordinator's correction: the time first recorded (when moved), who, when and why;
    # a voided event stays, out of the chain. The audit trail keeps every before/after.
    original_at: Mapped[datetime | None]
    corrected_by: Mapped[str | None] = mapped_column(String(100))
    corrected_at: Mapped[datetime | None]
    correction_reason: Mapped[str | None] = mapped_column(Text)
    voided_at: Mapped[datetime | None]
