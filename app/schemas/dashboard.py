"""Dashboard shapes: readings (raw and resampled), data gaps, release decisions, lane performance."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.schemas.common import StrictBody

Every = Literal["1min", "5min", "15min", "1h", "6h", "1d"]


class ReadingOut(BaseModel):
    logger_id: str
    ts: datetime
    temp_c: float
    lat: float | None = None
    lon: float | None = None
    battery_pct: float | None = None
    light: bool | None = None
    shock_g: float | None = None
    humidity_pct: float | None = None
    ln2_level_pct: float | None = None
    seq: int | None = None
    received_at: datetime


class BucketOut(BaseModel):
    """One resampling bucket [ts, ts + every): null statistics when it holds no reading."""

    ts: datetime
    min_c: float | None
    mean_c: float | None
    max_c: float | None
    count: int


class GapOut(BaseModel):
    """A period of unknown temperature (rule 2); `logger_id` null: no logger had a value."""

    start: datetime
    end: datetime
    duration_s: float
    logger_id: str | None = None


class ReadingsAnswer(BaseModel):
    """Without `every`: stored readings, paginated. With `every`: every bucket of the window."""

    items: list[ReadingOut] | list[BucketOut]
    next_cursor: str | None = None
    every: Every | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    gaps: list[GapOut] | None = Field(
        default=None, description="shipment-level gaps (every logger unknown); resampled only"
    )
    logger_gaps: list[GapOut] | None = None


class SignatureIn(StrictBody):
    """Both components of the signer's electronic signature, re-entered at signing (21 CFR
    11.200(a)(1)): the password, and optionally the email, which must be the signed-in person's."""

    email: str | None = Field(default=None, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class ReleaseIn(StrictBody):
    decision: Literal["released", "rejected"]
    reason: str = Field(min_length=1, max_length=4000)
    signature: SignatureIn | None = Field(
        default=None, description="Required: the decision is signed by a person with the qp role "
        "re-entering their password; API keys cannot sign")


class DistributionOut(BaseModel):
    count: int
    p10: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    max: float | None


class TransitOut(DistributionOut):
    expected_h: float
    max_allowed_h: float
    over_expected: int
    over_max: int
    within_validation: bool
    on_time: int = Field(description="deliveries by their hold deadline (packed or last "
                                     "recharged + qualified hold)")
    on_time_rate: float | None = Field(description="on_time / count; null without deliveries")


class WaypointDwellOut(DistributionOut):
    position: int
    name: str
    dwell_allowance_h: float
    over_allowance: int


class LanePerformanceOut(BaseModel):
    lane_id: uuid.UUID
    name: str
    delivered_shipments: int
    transit_h: TransitOut
    dwell_h: list[WaypointDwellOut]
    shipments_with_excursions: int
    excursion_rate: float | None
    alerts_by_kind: dict[str, int]
    since: datetime | None
