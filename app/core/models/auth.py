"""API keys (hashed at rest) and the append-only, hash-chained audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models.base import Base, created_at_column, new_id

ROLES = ("admin", "coordinator", "site", "qp")


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'coordinator', 'site', 'qp')", name="role"),
        # A site key is always scoped to its site, and only site keys are.
        CheckConstraint("(role = 'site') = (site_id IS NOT NULL)", name="site_scope"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary)
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id"))
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class AuditRecord(Base):
    """Append-only (a trigger refuses UPDATE, DELETE and TRUNCATE; see migration 0005)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_entity", "entity_type", "entity_id"),
        Index("ix_audit_log_actor_id", "actor", "id"),
        Index("ix_audit_log_at", "at"),
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = created_at_column()
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(100))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    reason: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary)
    hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
