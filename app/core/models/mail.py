"""E-mail notifications: one delivery row per (recipient, alert event), with its SMTP attempts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models.base import Base, LeasedDelivery, new_id


class MailDelivery(LeasedDelivery, Base):
    __tablename__ = "mail_deliveries"
    __table_args__ = (
        UniqueConstraint("user_id", "alert_event_id"),
        # The claim: due pending rows, oldest first.
        Index("ix_mail_deliveries_pending_due", "next_attempt_at",
              postgresql_where=text("state = 'pending'")),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    alert_event_id: Mapped[int] = mapped_column(ForeignKey("alert_events.id", ondelete="CASCADE"))
    alert_id: Mapped[uuid.UUID] = mapped_column(index=True)
    event: Mapped[str] = mapped_column(String(32))  # opened, escalated, severity_raised
    # The address and what the mail says, as they were when the event was written; the message
    # is rendered from them at sending (sender and link from the sending process's settings).
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    notice: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # The retry window opens at the event: a mail about an alert is worth sending for a day.
    last_reply_code: Mapped[int | None] = mapped_column(Integer)


class MailAttempt(Base):
    __tablename__ = "mail_attempts"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("mail_deliveries.id", ondelete="RESTRICT"), index=True
    )
    attempted_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))  # sent, rejected, deferred, timeout, …
    reply_code: Mapped[int | None] = mapped_column(Integer)  # the SMTP server's reply, if any
    reply: Mapped[str | None] = mapped_column(Text)
    duration_s: Mapped[float] = mapped_column(Float)
