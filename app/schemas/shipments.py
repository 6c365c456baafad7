"""Shipment shapes: creation, events, the summary the dashboard shows, release decisions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from app.schemas.common import Out, Reference, StrictBody, UtcDatetime
from app.schemas.reference import LOGGER_ID_PATTERN

EventType = Literal["departed", "customs_hold", "customs_released", "delivered", "received"]
ShipmentStatus = Literal["packed", "in_transit", "customs_hold", "delivered", "received"]


class ShipmentIn(StrictBody):
    reference: Reference
    lane_id: uuid.UUID
    product_id: uuid.UUID
    packaging_id: uuid.UUID
    logger_ids: list[str] = Field(min_length=1, max_length=16)
    packed_at: UtcDatetime
    departed_at: UtcDatetime | None = None
    safety_margin_h: float = Field(default=24.0, ge=0, le=24 * 30, allow_inf_nan=False)
    max_gap_s: int | None = Field(default=None, gt=0, le=7 * 86400)

    @field_validator("logger_ids")
    @classmethod
    def _unique_ids(cls, value: list[str]) -> list[str]:
        import re

        for logger_id in value:
            if not re.fullmatch(LOGGER_ID_PATTERN, logger_id):
                raise ValueError(f"'{logger_id}' is not a valid logger id")
        if len(set(value)) != len(value):
            raise ValueError("logger ids must be unique")
        return value


class ShipmentEventIn(StrictBody):
    type: EventType
    at: UtcDatetime
    note: str | None = Field(default=None, max_length=2000)


class ShipmentEventOut(Out):
    id: uuid.UUID
    type: str
    at: datetime
    note: str | None
    recorded_by: str | None
    recorded_at: datetime


class LastReading(Out):
    ts: datetime
    temp_c: float | None
    lat: float | None
    lon: float | None


class ShipmentSummary(Out):
    """A row of the fleet overview: identity, status and what is left before each limit bites."""

    id: uuid.UUID
    reference: str
    status: str
    lane_id: uuid.UUID
    product_id: uuid.UUID
    packaging_id: uuid.UUID
    origin_site_id: uuid.UUID
    destination_site_id: uuid.UUID
    logger_ids: list[str]
    packed_at: datetime
    departed_at: datetime | None
    delivered_at: datetime | None
    received_at: datetime | None
    last_reading: LastReading | None
    hold_deadline: datetime | None
    expected_arrival: datetime | None
    margin_h: float | None
    at_risk: bool
    stability_budget_used_s: float
    stability_budget_left_s: float | None
    projected_breach_at: datetime | None
    open_alerts: int
    open_critical_alerts: int
    release_decision: str | None


class ShipmentDetail(ShipmentSummary):
    safety_margin_h: float
    max_gap_s: int | None
    reading_count: int
    mkt_c: float | None
    time_out_of_range_s: float
    time_unknown_s: float
    min_c: float | None
    max_c: float | None
    mean_c: float | None
    release_reason: str | None
    released_by: str | None
    released_at: datetime | None
    events: list[ShipmentEventOut]
