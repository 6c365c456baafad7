"""Webhook subscriptions of sites, and one delivery row per (event, subscription) with its attempts."""

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
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models.base import Base, LeasedDelivery, created_at_column, new_id

DELIVERY_STATES = ("pending", "delivered", "failed", "cancelled")


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(String(200))
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id"), index=True)
    kinds: Mapped[list[str] | None] = mapped_column(ARRAY(String(32)))
    min_severity: Mapped[str] = mapped_column(String(16), default="info")
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None]
    # Endpoint health: since when every attempt failed, and how many in a row (reset by any 2xx).
    failing_since: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = created_at_column()
    # Deleting keeps the row (disabled): its deliveries and attempts are evidence, never removed.
    deleted_at: Mapped[datetime | None]
    deleted_by: Mapped[str | None] = mapped_column(String(100))


class WebhookDelivery(LeasedDelivery, Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "alert_event_id"),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        # The claim query: a subscription's due rows, and "is an earlier event of this alert pending?".
        Index(
            "ix_webhook_deliveries_pending_due", "subscription_id", "next_attempt_at",
            postgresql_where=text("state = 'pending'"),
        ),
        Index(
            "ix_webhook_deliveries_pending_order", "alert_id", "subscription_id", "alert_event_id",
            postgresql_where=text("state = 'pending'"),
        ),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="RESTRICT")
    )
    alert_event_id: Mapped[int] = mapped_column(ForeignKey("alert_events.id", ondelete="CASCADE"))
    alert_id: Mapped[uuid.UUID] = mapped_column(index=True)
    # Stable across retries (Standard Webhooks `webhook-id`).
    webhook_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(32))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # The retry window opens at the first attempt (again after a manual retry or re-enabling), so
    # a delivery is retried for 24 h however late it started.
    last_status_code: Mapped[int | None] = mapped_column(Integer)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="RESTRICT"), index=True
    )
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_s: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
