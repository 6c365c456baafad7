"""Webhook subscriptions: create, change, rotate the secret, delete, redeliver — site-scoped, audited."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.webhooks.outbox import CHANNEL
from alerts.webhooks.signing import new_secret
from alerts.webhooks.urls import UnsafeUrl, check_url
from app.core import audit
from app.core.errors import Conflict, Forbidden, InvalidField, NotFound
from app.core.models import Site, WebhookAttempt, WebhookDelivery, WebhookSubscription
from app.core.scope import site_scoped
from app.core.security import Principal
from app.schemas.webhooks import WebhookIn, WebhookPatch

_SECRET_COLUMNS = frozenset({"secret", "previous_secret"})
_OUT_FIELDS = (
    "id", "url", "description", "site_id", "kinds", "min_severity", "enabled", "disabled_reason",
    "disabled_at", "failing_since", "consecutive_failures", "previous_secret_expires_at",
    "created_at", "deleted_at", "deleted_by",
)


def snapshot(sub: WebhookSubscription) -> dict[str, Any]:
    """Audit view of a subscription: every column but the secrets."""
    return {
        c.key: getattr(sub, c.key)
        for c in sub.__mapper__.column_attrs if c.key not in _SECRET_COLUMNS
    }


def subscription_dict(sub: WebhookSubscription) -> dict[str, Any]:
    return {name: getattr(sub, name) for name in _OUT_FIELDS}


def scoped(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """A site key sees only its own site's live subscriptions (and none without a site); roles
    that see every site see deleted ones too (their delivery logs are evidence)."""
    stmt = site_scoped(stmt, principal, lambda site: WebhookSubscription.site_id == site)
    if not principal.sees_all_sites:
        stmt = stmt.where(WebhookSubscription.deleted_at.is_(None))
    return stmt


def _check_scope(principal: Principal, site_id: uuid.UUID | None) -> None:
    if not principal.sees_site(site_id):
        raise Forbidden("a site key manages only subscriptions scoped to its own site")


async def _check_site(session: AsyncSession, site_id: uuid.UUID | None) -> None:
    if site_id is not None and await session.get(Site, site_id) is None:
        raise InvalidField("site_id", f"no such site: {site_id}")


async def _check_url(url: str, allow_private: bool) -> None:
    try:
        await check_url(url, allow_private=allow_private)
    except UnsafeUrl as exc:
        raise InvalidField("url", str(exc)) from exc


async def create(
    session: AsyncSession, principal: Principal, data: WebhookIn, *, allow_private: bool
) -> tuple[WebhookSubscription, str]:
    """A new subscription and its secret (returned once, never shown again)."""
    site_id = data.site_id if data.site_id is not None or not principal.is_site else principal.site_id
    _check_scope(principal, site_id)
    await _check_site(session, site_id)
    await _check_url(data.url, allow_private)
    secret = new_secret()
    sub = WebhookSubscription(
        url=data.url, site_id=site_id, kinds=data.kinds, min_severity=data.min_severity,
        description=data.description, enabled=data.enabled, secret=secret,
        consecutive_failures=0, disabled_reason=None if data.enabled else "created disabled",
    )
    session.add(sub)
    await session.flush()
    await audit.record(
        session, principal, action="create", entity_type="webhook_subscription", entity_id=sub.id,
        after=snapshot(sub),
    )
    return sub, secret


async def get_visible(
    session: AsyncSession, principal: Principal, sub_id: uuid.UUID, *, lock: bool = False,
    deleted_ok: bool = False,
) -> WebhookSubscription:
    """The subscription, or 404; a deleted one can be read (`deleted_ok`) but never changed."""
    stmt = scoped(select(WebhookSubscription).where(WebhookSubscription.id == sub_id), principal)
    sub: WebhookSubscription | None = await session.scalar(stmt.with_for_update() if lock else stmt)
    if sub is None:
        raise NotFound("webhook subscription", sub_id)
    if sub.deleted_at is not None and not deleted_ok:
        raise Conflict(f"the subscription was deleted by {sub.deleted_by}; it is kept, read-only, "
                       "with its delivery log")
    return sub


async def update_subscription(
    session: AsyncSession, principal: Principal, sub: WebhookSubscription, data: WebhookPatch,
    *, allow_private: bool, now: datetime,
) -> WebhookSubscription:
    given = data.model_fields_set
    for name in ("url", "min_severity", "enabled"):
        if name in given and getattr(data, name) is None:
            raise InvalidField(name, "may not be null")
    before = snapshot(sub)
    if "site_id" in given:
        _check_scope(principal, data.site_id)
        await _check_site(session, data.site_id)
        sub.site_id = data.site_id
    if "url" in given and data.url is not None and data.url != sub.url:
        await _check_url(data.url, allow_private)
        sub.url = data.url
        await _restart_pending(session, sub, now)  # a fixed URL: try the backlog at once
    for name in ("kinds", "min_severity", "description"):
        if name in given:
            setattr(sub, name, getattr(data, name))
    if "enabled" in given and data.enabled != sub.enabled:
        if data.enabled:
            await _resume(session, sub, now)
        else:
            sub.enabled, sub.disabled_at = False, now
            sub.disabled_reason = f"disabled by {principal.actor}"
    await session.flush()
    await audit.record(
        session, principal, action="update", entity_type="webhook_subscription", entity_id=sub.id,
        before=before, after=snapshot(sub),
    )
    return sub


async def _resume(session: AsyncSession, sub: WebhookSubscription, now: datetime) -> None:
    """Enable: the paused rows go at once."""
    sub.enabled, sub.disabled_at, sub.disabled_reason = True, None, None
    await _restart_pending(session, sub, now)


async def _restart_pending(session: AsyncSession, sub: WebhookSubscription, now: datetime) -> None:
    """Forget the failure streak; pending rows are due now, with a fresh 24 h retry window."""
    sub.failing_since, sub.consecutive_failures = None, 0
    await session.flush()
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == sub.id, WebhookDelivery.state == "pending")
        .values(next_attempt_at=now, scheduled_at=now, attempts=0)
        .execution_options(synchronize_session=False)
    )
    await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


async def rotate_secret(
    session: AsyncSession, principal: Principal, sub: WebhookSubscription, *, overlap_s: int,
    now: datetime,
) -> str:
    """A new secret; the old one keeps signing (second signature) for `overlap_s` seconds."""
    sub.previous_secret = sub.secret if overlap_s > 0 else None
    sub.previous_secret_expires_at = now + timedelta(seconds=overlap_s) if overlap_s > 0 else None
    sub.secret = new_secret()
    await session.flush()
    await audit.record(
        session, principal, action="rotate_secret", entity_type="webhook_subscription",
        entity_id=sub.id, after={"previous_secret_expires_at": sub.previous_secret_expires_at},
    )
    return sub.secret


async def delete(
    session: AsyncSession, principal: Principal, sub: WebhookSubscription, *, now: datetime
) -> None:
    """Disable it for good and mark it deleted; nothing is removed. Deliveries not yet made are
    cancelled (an attempt in flight is still logged, its outcome no longer changes the state)."""
    before = snapshot(sub)
    cancelled = (await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == sub.id, WebhookDelivery.state == "pending")
        .values(state="cancelled", leased_until=None, lease_token=None,
                last_error="cancelled: the subscription was deleted")
        .returning(WebhookDelivery.id)
        .execution_options(synchronize_session=False)
    )).scalars().all()
    sub.enabled, sub.disabled_at = False, now
    sub.disabled_reason = f"deleted by {principal.actor}"
    sub.deleted_at, sub.deleted_by = now, principal.actor
    await session.flush()
    await audit.record(
        session, principal, action="delete", entity_type="webhook_subscription", entity_id=sub.id,
        before=before, after={**snapshot(sub), "cancelled_deliveries": len(cancelled)},
    )


async def redeliver(
    session: AsyncSession, principal: Principal, sub: WebhookSubscription,
    delivery_id: uuid.UUID, *, now: datetime,
) -> WebhookDelivery:
    """Queue a delivery again now (delivered or failed ones too), with a fresh retry window."""
    delivery = await session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.subscription_id == sub.id)
        .with_for_update()
    )
    if delivery is None:
        raise NotFound("webhook delivery", delivery_id)
    if not sub.enabled:
        raise Conflict("the subscription is disabled: enable it first (PATCH enabled=true)")
    if delivery.state == "pending" and delivery.leased_until and delivery.leased_until > now:
        raise Conflict("an attempt of this delivery is in flight; try again when it has finished")
    before = {"state": delivery.state, "attempts": delivery.attempts}
    delivery.state, delivery.attempts = "pending", 0
    delivery.next_attempt_at = delivery.scheduled_at = now
    await session.flush()
    await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
    await audit.record(
        session, principal, action="redeliver", entity_type="webhook_delivery",
        entity_id=delivery.id, before=before, after={"state": "pending"},
        reason=f"manual retry of {delivery.webhook_id}",
    )
    return delivery


async def delivery_dicts(
    session: AsyncSession, deliveries: Sequence[WebhookDelivery], now: datetime
) -> list[dict[str, Any]]:
    """Deliveries as the delivery log shows them, each with its attempts (oldest first)."""
    attempts: dict[uuid.UUID, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
    if deliveries:
        rows = await session.scalars(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(list(attempts)))
            .order_by(WebhookAttempt.id)
        )
        for attempt in rows:
            attempts[attempt.delivery_id].append(attempt)
    return [
        {
            "id": d.id, "subscription_id": d.subscription_id, "alert_id": d.alert_id,
            "alert_event_id": d.alert_event_id, "webhook_id": d.webhook_id,
            "event_type": d.event_type, "state": d.state, "attempt_count": d.attempts,
            "in_flight": d.state == "pending" and d.leased_until is not None
            and d.leased_until > now,
            "next_attempt_at": d.next_attempt_at if d.state == "pending" else None,
            "last_attempt_at": d.last_attempt_at, "last_status_code": d.last_status_code,
            "last_error": d.last_error, "created_at": d.created_at,
            "delivered_at": d.delivered_at, "attempts": attempts[d.id],
        }
        for d in deliveries
    ]
