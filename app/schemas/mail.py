"""The mail delivery log's shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.schemas.common import Out

MailState = Literal["pending", "delivered", "failed", "cancelled"]


class MailAttemptOut(Out):
    attempted_at: datetime
    outcome: str = Field(description="sent, rejected (5xx: final), deferred (4xx), timeout, "
                                     "connection_error (connect, TLS, login) or error")
    reply_code: int | None = Field(description="the SMTP server's reply code, when it answered")
    reply: str | None
    duration_s: float


class MailOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    recipient: str = Field(description="the address when the event was written")
    alert_id: uuid.UUID
    alert_event_id: int
    event: Literal["opened", "escalated", "severity_raised"]
    subject: str
    state: MailState
    attempt_count: int
    in_flight: bool
    next_attempt_at: datetime | None = Field(description="null unless pending")
    last_attempt_at: datetime | None
    last_reply_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempts: list[MailAttemptOut]
