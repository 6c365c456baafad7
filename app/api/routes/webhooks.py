"""Webhook subscriptions of sites: CRUD, secret rotation, the delivery log and manual redelivery."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import select

from alerts.webhooks import subscriptions as svc
from app.api.deps import SessionDep, SettingsDep, require_roles
from app.api.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    decode_cursor,
    encode_cursor,
    paginate,
)
from app.core.errors import InvalidField, NotFound
from app.core.models import WebhookDelivery, WebhookSubscription, utcnow
from app.core.security import Principal
from app.schemas.webhooks import (
    DeliveryOut,
    DeliveryState,
    SecretRotated,
    SecretRotateIn,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
)

router = APIRouter(tags=["webhooks"])
# Coordinators manage every subscription; a site key only those scoped to its own site.
Manager = Annotated[Principal, Depends(require_roles("coordinator", "site"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.post("/webhooks", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
async def create_webhook(
    body: WebhookIn, session: SessionDep, settings: SettingsDep, principal: Manager
) -> WebhookCreated:
    """Subscribe a URL; the answer carries the signing secret (`whsec_…`), shown only this once."""
    sub, secret = await svc.create(
        session, principal, body, allow_private=settings.webhook_allow_private
    )
    return WebhookCreated(**svc.subscription_dict(sub), secret=secret)


@router.get("/webhooks", response_model=Page[WebhookOut])
async def list_webhooks(
    session: SessionDep, principal: Manager, site_id: uuid.UUID | None = None,
    enabled: bool | None = None,
    deleted: Annotated[bool, Query(
        description="list deleted subscriptions (kept with their delivery logs) instead of live "
                    "ones; site keys see only live ones")] = False,
    cursor: str | None = None, limit: Limit = DEFAULT_LIMIT,
) -> Page[WebhookOut]:
    stmt = svc.scoped(select(WebhookSubscription), principal).where(
        WebhookSubscription.deleted_at.is_not(None) if deleted
        else WebhookSubscription.deleted_at.is_(None))
    if site_id is not None:
        stmt = stmt.where(WebhookSubscription.site_id == site_id)
    if enabled is not None:
        stmt = stmt.where(WebhookSubscription.enabled.is_(enabled))
    rows, next_cursor = await paginate(
        session, stmt, [WebhookSubscription.created_at, WebhookSubscription.id], cursor=cursor,
        limit=limit, key_of=lambda r: [r[0].created_at, r[0].id],
    )
    return Page(items=[WebhookOut(**svc.subscription_dict(r[0])) for r in rows],
                next_cursor=next_cursor)


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut)
async def get_webhook(
    webhook_id: uuid.UUID, session: SessionDep, principal: Manager
) -> WebhookOut:
    return WebhookOut(**svc.subscription_dict(
        await svc.get_visible(session, principal, webhook_id, deleted_ok=True)))


@router.patch("/webhooks/{webhook_id}", response_model=WebhookOut)
async def update_webhook(
    webhook_id: uuid.UUID, body: WebhookPatch, session: SessionDep, settings: SettingsDep,
    principal: Manager,
) -> WebhookOut:
    """Change URL, filters or description; `enabled` pauses or resumes delivery."""
    sub = await svc.get_visible(session, principal, webhook_id, lock=True)
    sub = await svc.update_subscription(
        session, principal, sub, body, allow_private=settings.webhook_allow_private, now=utcnow()
    )
    return WebhookOut(**svc.subscription_dict(sub))


@router.delete("/webhooks/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: uuid.UUID, session: SessionDep, principal: Manager) -> Response:
    """Disable and mark deleted: no more deliveries (pending ones are cancelled), but the
    subscription and its delivery log stay readable by coordinators; audited."""
    sub = await svc.get_visible(session, principal, webhook_id, lock=True)
    await svc.delete(session, principal, sub, now=utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/webhooks/{webhook_id}/rotate-secret", response_model=SecretRotated)
async def rotate_secret(
    webhook_id: uuid.UUID, session: SessionDep, principal: Manager,
    body: SecretRotateIn | None = None,
) -> SecretRotated:
    """A new secret, shown once; during `overlap_s` every event carries both signatures."""
    sub = await svc.get_visible(session, principal, webhook_id, lock=True)
    overlap = (body or SecretRotateIn()).overlap_s
    secret = await svc.rotate_secret(session, principal, sub, overlap_s=overlap, now=utcnow())
    return SecretRotated(id=sub.id, secret=secret,
                         previous_secret_expires_at=sub.previous_secret_expires_at)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=Page[DeliveryOut])
async def list_deliveries(
    webhook_id: uuid.UUID, session: SessionDep, principal: Manager,
    state: DeliveryState | None = None, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT,
) -> Page[DeliveryOut]:
    """The delivery log, newest event first: state, attempts with status codes and latency."""
    await svc.get_visible(session, principal, webhook_id, deleted_ok=True)
    stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == webhook_id)
    if state is not None:
        stmt = stmt.where(WebhookDelivery.state == state)
    if cursor:
        (before,) = decode_cursor(cursor, 1)
        if not isinstance(before, int) or isinstance(before, bool) or not 0 <= before < 2**63:
            raise InvalidField("cursor", "not a cursor returned by this API")
        stmt = stmt.where(WebhookDelivery.alert_event_id < before)
    rows = list(await session.scalars(
        stmt.order_by(WebhookDelivery.alert_event_id.desc()).limit(limit + 1)
    ))
    next_cursor = encode_cursor([rows[limit - 1].alert_event_id]) if len(rows) > limit else None
    items = await svc.delivery_dicts(session, rows[:limit], utcnow())
    return Page(items=[DeliveryOut(**item) for item in items], next_cursor=next_cursor)


@router.get("/webhooks/{webhook_id}/deliveries/{delivery_id}", response_model=DeliveryOut)
async def get_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, session: SessionDep, principal: Manager
) -> DeliveryOut:
    await svc.get_visible(session, principal, webhook_id, deleted_ok=True)
    delivery = await session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.subscription_id == webhook_id
        )
    )
    if delivery is None:
        raise NotFound("webhook delivery", delivery_id)
    return DeliveryOut(**(await svc.delivery_dicts(session, [delivery], utcnow()))[0])


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
    status_code=status.HTTP_202_ACCEPTED, response_model=DeliveryOut,
)
async def retry_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, session: SessionDep, principal: Manager
) -> DeliveryOut:
    """Send this event again now (same `webhook-id`), whatever its state; audited."""
    sub = await svc.get_visible(session, principal, webhook_id)
    delivery = await svc.redeliver(session, principal, sub, delivery_id, now=utcnow())
    return DeliveryOut(**(await svc.delivery_dicts(session, [delivery], utcnow()))[0])
