"""Declarative base: naming convention, tz-aware timestamps, UUID keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer, MetaData, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: DateTime(timezone=True)}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def created_at_column() -> Mapped[datetime]:
    return mapped_column(server_default=func.now(), default=utcnow)


class LeasedDelivery:
    """The columns of an outbox row sent by a leased delivery loop (webhook deliveries, mails):
    its state, retry window, next attempt, the lease of the worker sending it, and its end."""

    state: Mapped[str] = mapped_column(String(16), default="pending")
    # Attempts started in the current retry window (webhooks open it at the first attempt, mails
    # at the event); past the window a failing row is marked failed.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    scheduled_at: Mapped[datetime] = created_at_column()
    next_attempt_at: Mapped[datetime]
    last_attempt_at: Mapped[datetime | None]
    # While a worker sends it: one attempt in flight per row; an expired lease means the worker died.
    leased_until: Mapped[datetime | None]
    lease_token: Mapped[uuid.UUID | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    delivered_at: Mapped[datetime | None]
