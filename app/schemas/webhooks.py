"""Webhook subscription, secret rotation and delivery-log shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from app.core.models.alerts import ALERT_KINDS, SEVERITIES
from app.schemas.common import Out, StrictBody

AlertKind = Literal[ALERT_KINDS]  # type: ignore[valid-type]
Severity = Literal[SEVERITIES]  # type: ignore[valid-type]
DeliveryState = Literal["pending", "delivered", "failed", "cancelled"]
Url = str
_URL = Field(min_length=1, max_length=2048, description="http(s) URL the events are POSTed to")
_KINDS = Field(
    default=None, max_length=len(ALERT_KINDS),
    description="alert kinds to receive; null or omitted: all kinds",
)


def _unique_kinds(value: list[str] | None) -> list[str] | None:
    return sorted(set(value)) if value else None


class WebhookIn(StrictBody):
    url: Url = _URL
    site_id: uuid.UUID | None = Field(
        default=None,
        description="only alerts of shipments from or to this site; a site key defaults to its own",
    )
    kinds: list[AlertKind] | None = _KINDS
    min_severity: Severity = "info"
    description: str | None = Field(default=None, max_length=200)
    enabled: bool = True

    _kinds = field_validator("kinds")(_unique_kinds)


class WebhookPatch(StrictBody):
    """Only the fields given change; `kinds: null` means all kinds, `site_id: null` all sites."""

    url: Url | None = Field(default=None, min_length=1, max_length=2048)
    site_id: uuid.UUID | None = None
    kinds: list[AlertKind] | None = _KINDS
    min_severity: Severity | None = None
    description: str | None = Field(default=None, max_length=200)
    enabled: bool | None = None

    _kinds = field_validator("kinds")(_unique_kinds)


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str | None
    site_id: uuid.UUID | None
    kinds: list[str] | None
    min_severity: str
    enabled: bool
    disabled_reason: str | None = Field(description="why it is disabled (by a person or automatically)")
    disabled_at: datetime | None
    failing_since: datetime | None = Field(description="every attempt has failed since then")
    consecutive_failures: int
    previous_secret_expires_at: datetime | None = Field(
        description="while set and in the future, events carry signatures of both secrets"
    )
    created_at: datetime
    deleted_at: datetime | None = Field(
        default=None, description="deleted (and disabled): kept with its delivery log")
    deleted_by: str | None = None


class WebhookCreated(WebhookOut):
    secret: str = Field(description="the signing secret (`whsec_…`), shown only now")


class SecretRotateIn(StrictBody):
    overlap_s: int = Field(
        default=86400, ge=0, le=7 * 86400,
        description="how long the old secret keeps signing too (0: at once only the new one)",
    )


class SecretRotated(BaseModel):
    id: uuid.UUID
    secret: str = Field(description="the new signing secret, shown only now")
    previous_secret_expires_at: datetime | None


class AttemptOut(Out):
    attempted_at: datetime
    status_code: int | None
    duration_s: float
    error: str | None


class DeliveryOut(BaseModel):
    id: uuid.UUID
    subscription_id: uuid.UUID
    alert_id: uuid.UUID
    alert_event_id: int
    webhook_id: str = Field(description="the `webhook-id` header, the same on every retry")
    event_type: str
    state: DeliveryState
    attempt_count: int = Field(description="attempts started in the current retry window")
    in_flight: bool
    next_attempt_at: datetime | None = Field(description="null unless pending")
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempts: list[AttemptOut]
