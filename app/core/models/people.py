"""People: named user accounts (Argon2id password hashes) and their server-side sessions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String, false, func
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models.base import Base, created_at_column, new_id, utcnow

SEVERITIES = ("info", "warning", "critical")


class User(Base):
    """A person. Emails are stored lower-case (one account per address, whatever its case);
    the password only as an Argon2id hash. Never deleted: disable instead (the audit trail and
    signed decisions name the account)."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'coordinator', 'site', 'qp')", name="role"),
        # A site user always belongs to a site, and only site users do (as API keys).
        CheckConstraint("(role = 'site') = (site_id IS NOT NULL)", name="site_scope"),
        CheckConstraint("email = lower(email)", name="email_lower"),
        CheckConstraint("notify_min_severity IN ('info', 'warning', 'critical')",
                        name="notify_min_severity"),
        CheckConstraint("failed_logins >= 0", name="failed_logins"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id"))
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    notify_email: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    notify_min_severity: Mapped[str] = mapped_column(String(16), default="critical",
                                                     server_default="critical")
    # Consecutive failed logins (or signatures); reset by a success. At the limit the account is
    # locked until `locked_until`, even to the right password.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None]
    password_changed_at: Mapped[datetime] = created_at_column()
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow,
                                                 onupdate=utcnow)


class UserSession(Base):
    """A signed-in browser: the cookie's token is stored only as its SHA-256 (256 random bits)."""

    __tablename__ = "user_sessions"
    __table_args__ = (Index("ix_user_sessions_user_id", "user_id"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = created_at_column()
    last_seen_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime]  # the absolute end (created_at + 12 h); idle ends it sooner
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
