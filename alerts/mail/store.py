"""Mail outbox persistence: claim due rows (SKIP LOCKED, leased), record attempts, expire stale rows.

Every function takes the caller's session and never commits: the delivery loop (delivery.py) opens
the transaction around each unit of work and commits it. Retry timing is the webhooks' policy
(alerts/webhooks/retry.py), with the window counted from the event: a mail about an alert is
worth sending for a day, not after.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.webhooks import retry
from app.core.models import MailAttempt, MailDelivery, User

EXPIRED = "expired: not sent within {h:g} h of the event (was COLDCHAIN_SMTP_URL unset?)"
UNWANTED = "not sent: the user was disabled or turned e-mail off after the event"


@dataclass(frozen=True, slots=True)
class Claim:
    """One mail leased to this worker."""

    id: uuid.UUID
    recipient: str
    notice: dict[str, Any]
    created_at: datetime
    token: uuid.UUID


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt did. `kind`: sent; rejected (a 5xx reply to this message: permanent);
    deferred (a 4xx reply); timeout; connection_error (connect, TLS, greeting, login); error."""

    claim: Claim
    attempted_at: datetime
    finished_at: datetime
    reply_code: int | None
    reply: str | None
    duration_s: float
    kind: str

    @property
    def ok(self) -> bool:
        return self.kind == "sent"

    @property
    def permanent(self) -> bool:
        return self.kind == "rejected"


def _live(now: datetime) -> Any:
    d = MailDelivery
    return (d.state == "pending") & ((d.leased_until.is_(None)) | (d.leased_until <= now))


async def expire(session: AsyncSession, now: datetime) -> int:
    """Fail pending mails whose event is older than the retry window without sending them."""
    d = MailDelivery
    hours = retry.GIVE_UP_AFTER.total_seconds() / 3600
    result = await session.execute(
        update(d).where(_live(now), d.scheduled_at <= now - retry.GIVE_UP_AFTER)
        .values(state="failed", last_error=EXPIRED.format(h=hours), leased_until=None,
                lease_token=None)
        .returning(d.id)
    )
    return len(result.all())


async def cancel_unwanted(session: AsyncSession, now: datetime) -> int:
    """Cancel pending mails of users disabled or opted out since the event was written."""
    d = MailDelivery
    unwanted = select(User.id).where(User.disabled.is_(True) | User.notify_email.is_(False))
    result = await session.execute(
        update(d).where(_live(now), d.user_id.in_(unwanted))
        .values(state="cancelled", last_error=UNWANTED, leased_until=None, lease_token=None)
        .returning(d.id)
    )
    return len(result.all())


async def claim(session: AsyncSession, now: datetime, *, limit: int, lease: timedelta) -> list[Claim]:
    """Lease up to `limit` due rows, oldest first, skipping rows another worker holds. The rows
    stay locked until the caller commits: commit at once, before sending anything."""
    d = MailDelivery
    rows = (await session.execute(
        select(d.id, d.recipient, d.notice, d.created_at)
        .where(_live(now), d.next_attempt_at <= now)
        .order_by(d.next_attempt_at).limit(limit).with_for_update(skip_locked=True)
    )).all()
    if not rows:
        return []
    token = uuid.uuid4()
    await session.execute(
        update(d).where(d.id.in_([r.id for r in rows]))
        .values(attempts=d.attempts + 1, leased_until=now + lease, lease_token=token,
                last_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    return [Claim(r.id, r.recipient, r.notice, r.created_at, token) for r in rows]


async def record(
    session: AsyncSession, outcomes: Sequence[Outcome], jitter: Callable[[], float]
) -> list[str]:
    """Log every attempt and move each row on: delivered, retry later, or failed (a permanent
    rejection at once; anything else once the retry window is over). Final states out."""
    d = MailDelivery
    current = {r.id: r for r in await session.execute(
        select(d.id, d.lease_token, d.attempts, d.scheduled_at)
        .where(d.id.in_(sorted({o.claim.id for o in outcomes})))
        .order_by(d.id).with_for_update()
    )}
    attempts, changes, finals = [], [], []
    for o in outcomes:
        row = current[o.claim.id]
        attempts.append({
            "delivery_id": row.id, "attempted_at": o.attempted_at, "outcome": o.kind,
            "reply_code": o.reply_code, "reply": o.reply, "duration_s": o.duration_s,
        })
        if row.lease_token != o.claim.token:  # lease lost: another worker owns the row now
            continue
        state, next_at = retry.settle(
            ok=o.ok, permanent=o.permanent, failures=row.attempts, scheduled_at=row.scheduled_at,
            finished_at=o.finished_at, jitter=jitter,
        )
        if state != "pending":
            finals.append(state)
        changes.append({
            "id": row.id, "state": state, "next_attempt_at": next_at or o.finished_at,
            "delivered_at": o.finished_at if o.ok else None, "leased_until": None,
            "lease_token": None, "last_reply_code": o.reply_code,
            "last_error": None if o.ok else o.reply,
        })
    if attempts:
        await session.execute(insert(MailAttempt), attempts)
    if changes:
        await session.execute(update(MailDelivery), changes)
    return finals


async def queue_stats(session: AsyncSession, now: datetime) -> tuple[int, float]:
    """Pending mails, and the age in seconds of the oldest."""
    depth, oldest = (await session.execute(
        select(func.count(), func.min(MailDelivery.created_at)).where(MailDelivery.state == "pending")
    )).one()
    return int(depth), max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
