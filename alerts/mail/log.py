"""The mail delivery log as people read it: each mail with its attempts (API, admins/coordinators)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import MailAttempt, MailDelivery


async def mail_dicts(
    session: AsyncSession, mails: Sequence[MailDelivery], now: datetime
) -> list[dict[str, Any]]:
    attempts: dict[uuid.UUID, list[MailAttempt]] = {m.id: [] for m in mails}
    if mails:
        for attempt in await session.scalars(
            select(MailAttempt).where(MailAttempt.delivery_id.in_(list(attempts)))
            .order_by(MailAttempt.id)
        ):
            attempts[attempt.delivery_id].append(attempt)
    return [
        {
            "id": m.id, "user_id": m.user_id, "recipient": m.recipient, "alert_id": m.alert_id,
            "alert_event_id": m.alert_event_id, "event": m.event, "subject": m.subject,
            "state": m.state, "attempt_count": m.attempts,
            "in_flight": m.state == "pending" and m.leased_until is not None
            and m.leased_until > now,
            "next_attempt_at": m.next_attempt_at if m.state == "pending" else None,
            "last_attempt_at": m.last_attempt_at, "last_reply_code": m.last_reply_code,
            "last_error": m.last_error, "created_at": m.created_at,
            "delivered_at": m.delivered_at, "attempts": attempts[m.id],
        }
        for m in mails
    ]
