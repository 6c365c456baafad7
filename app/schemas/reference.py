"""Reference data shapes: sites, products, packaging, lanes, loggers, API keys."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import Field, model_validator

from app.core.errors import InvalidField
from app.schemas.common import (
    Celsius,
    DocumentKind,
    Latitude,
    Longitude,
    Name,
    Out,
    StrictBody,
    UtcDatetime,
)

Role = Literal["admin", "coordinator", "site", "qp"]
LOGGER_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"


class SiteIn(StrictBody):
    name: Name
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code")


class SiteOut(Out):
    id: uuid.UUID
    name: str
    country: str
    created_at: datetime


class ProductIn(StrictBody):
    """A product profile. Battery is judged for every product (`battery_low` below 20 %, clear
    again at 25 %); light and shock as set here."""

    name: Name
    temp_min_c: Celsius
    temp_max_c: Celsius
    critical_min_c: Celsius | None = None
    critical_max_c: Celsius | None = None
    alarm_delay_s: int = Field(default=0, ge=0, le=7 * 86400)
    stability_budget_s: int = Field(ge=0, le=365 * 86400)
    shock_limit_g: float | None = Field(
        default=None, gt=0, le=1000, allow_inf_nan=False,
        description="A reading's shock_g above it raises `shock`; without it shock is not judged")
    light_sensitive: bool = Field(
        default=True, description="Light (lid opened) raises `light_exposure` unless false")

    @model_validator(mode="after")
    def _ordered(self) -> ProductIn:

        if self.temp_min_c >= self.temp_max_c:
            raise InvalidField("temp_min_c", "must be below temp_max_c")
        if self.critical_min_c is not None and self.critical_min_c > self.temp_min_c:
            raise InvalidField("critical_min_c", "must be at or below temp_min_c")
        if self.critical_max_c is not None and self.critical_max_c < self.temp_max_c:
            raise InvalidField("critical_max_c", "must be at or above temp_max_c")
        return self


class ProductOut(Out):
    id: uuid.UUID
    name: str
    temp_min_c: float
    temp_max_c: float
    critical_min_c: float | None
    critical_max_c: float | None
    alarm_delay_s: int
    stability_budget_s: int
    shock_limit_g: float | None
    light_sensitive: bool
    created_at: datetime


class PackagingIn(StrictBody):
    name: Name
    qualified_hold_h: float = Field(gt=0, le=24 * 60, allow_inf_nan=False)
    temp_class: str | None = Field(default=None, max_length=40)
    requalified_until: date | None = Field(
        default=None, description="The shipper type's qualification holds through this day "
                                  "(UTC); a shipment packed after it is refused (422)")


class PackagingOut(Out):
    id: uuid.UUID
    name: str
    qualified_hold_h: float
    temp_class: str | None
    requalified_until: date | None
    created_at: datetime


class RequalificationDue(Out):
    """A packaging profile whose requalification runs out soon (or ran out), with its use."""

    id: uuid.UUID
    name: str
    requalified_until: date
    days_left: int = Field(description="days from today (UTC) to `requalified_until`; "
                                       "negative: expired")
    active_shipments: int = Field(description="shipments packed, in transit, in customs or "
                                              "delivered (not yet received) in this packaging")


class WaypointIn(StrictBody):
    name: Name
    lat: Latitude
    lon: Longitude
    radius_km: float = Field(gt=0, le=500, allow_inf_nan=False)
    dwell_allowance_h: float = Field(ge=0, le=24 * 30, allow_inf_nan=False)


class WaypointOut(Out):
    position: int
    name: str
    lat: float
    lon: float
    radius_km: float
    dwell_allowance_h: float


class LaneIn(StrictBody):
    name: Name
    origin_site_id: uuid.UUID
    destination_site_id: uuid.UUID
    expected_transit_h: float = Field(gt=0, le=24 * 60, allow_inf_nan=False)
    max_transit_h: float = Field(gt=0, le=24 * 60, allow_inf_nan=False)
    corridor_km: float = Field(gt=0, le=5000, allow_inf_nan=False)
    waypoints: list[WaypointIn] = Field(default_factory=list, max_length=100)
    required_documents: list[DocumentKind] = Field(
        default_factory=list, max_length=32,
        description="Document kinds a shipment on this lane needs before it departs "
                    "(`GET /shipments/{id}/readiness`)")

    @model_validator(mode="after")
    def _consistent(self) -> LaneIn:
        if len(set(self.required_documents)) != len(self.required_documents):
            raise InvalidField("required_documents", "each kind once")

        if self.max_transit_h < self.expected_transit_h:
            raise InvalidField("max_transit_h", "must be at least expected_transit_h")
        if self.origin_site_id == self.destination_site_id:
            raise InvalidField("destination_site_id", "must differ from origin_site_id")
        return self


class LaneOut(Out):
    id: uuid.UUID
    name: str
    origin_site_id: uuid.UUID
    destination_site_id: uuid.UUID
    expected_transit_h: float
    max_transit_h: float
    corridor_km: float
    waypoints: list[WaypointOut]
    required_documents: list[str]
    created_at: datetime


class LoggerIn(StrictBody):
    id: str = Field(pattern=LOGGER_ID_PATTERN)
    reporting_interval_s: int = Field(default=300, ge=1, le=86400)


class LoggerOut(Out):
    id: str
    reporting_interval_s: int
    status: str
    status_at: datetime | None
    last_received_at: datetime | None
    last_reading_ts: datetime | None
    last_seq: int | None
    seq_gaps: int
    created_at: datetime


def check_site_scope(role: str, site_id: uuid.UUID | None, what: str) -> None:
    """A site key or user belongs to exactly one site; every other role to none (422 otherwise)."""
    if role == "site" and site_id is None:
        raise InvalidField("site_id", f"a site {what} needs site_id")
    if role != "site" and site_id is not None:
        raise InvalidField("site_id", f"only site {what}s belong to a site")


class ApiKeyIn(StrictBody):
    role: Role
    site_id: uuid.UUID | None = None
    name: str | None = Field(default=None, max_length=200)
    expires_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _site_scope(self) -> ApiKeyIn:
        check_site_scope(self.role, self.site_id, "key")
        return self


class ApiKeyOut(Out):
    id: uuid.UUID
    prefix: str
    name: str | None
    role: str
    site_id: uuid.UUID | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The API key itself; shown only in this response")
