"""Shipment shapes: creation, events, the summary the dashboard shows, release decisions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from app.core.errors import InvalidField
from app.schemas.common import Out, Reference, StrictBody, UtcDatetime
from app.schemas.fleet import Whereabouts
from app.schemas.reference import LOGGER_ID_PATTERN

EventType = Literal["departed", "customs_hold", "customs_released", "delivered", "received",
                    "recharged", "rerouted"]
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
    """A custody event. `recharged` (re-iced, LN2 recharged: the hold clock restarts at `at`)
    and `rerouted` (with `lane_id`: the new lane applies from `at`) are contingencies a
    coordinator records; they leave the status as it is and take their place in time."""

    type: EventType
    at: UtcDatetime = Field(description=(
        "When it happened: not before the previous event of the chain (delivery and receipt not "
        "before departure), at most 5 min ahead of the server's clock, and not before readings "
        "already stored for the shipment unless a coordinator records it as a late entry"))
    lane_id: uuid.UUID | None = Field(
        default=None, description="`rerouted` only: the lane the shipment travels from `at` on")
    note: str | None = Field(default=None, max_length=2000)
    correction_reason: str | None = Field(
        default=None, min_length=1, max_length=2000,
        description="Coordinators only: why an event before readings already stored (a late "
                    "entry) is recorded now")
    override_reason: str | None = Field(
        default=None, min_length=1, max_length=2000,
        description="`departed` only, coordinators only: why the shipment departs although it "
                    "is not ready (`GET /shipments/{id}/readiness`); without it such a "
                    "departure is refused (409)")

    @model_validator(mode="after")
    def _lane_for_reroutes(self) -> ShipmentEventIn:
        if self.override_reason is not None and self.type != "departed":
            raise InvalidField("override_reason", "only a 'departed' event overrides readiness")
        if self.type == "rerouted" and self.lane_id is None:
            raise InvalidField("lane_id", "a 'rerouted' event names the new lane")
        if self.type != "rerouted" and self.lane_id is not None:
            raise InvalidField("lane_id", "only a 'rerouted' event names a lane")
        return self


class EventCorrectionIn(StrictBody):
    """A coordinator's correction of a recorded event: a new time, or void (recorded in error)."""

    at: UtcDatetime | None = Field(default=None, description="the corrected time")
    void: bool = Field(default=False, description="take the event out of the chain")
    reason: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _one_correction(self) -> EventCorrectionIn:
        if (self.at is None) == (not self.void):
            raise InvalidField("at", "give either a corrected time (`at`) or `void: true`")
        return self


class ShipmentEventOut(Out):
    id: uuid.UUID
    type: str
    at: datetime
    lane_id: uuid.UUID | None = Field(description="`rerouted`: the new lane")
    note: str | None
    override_reason: str | None = Field(
        description="`departed` while not ready: the coordinator's reason")
    override_unready: dict[str, Any] | None = Field(
        description="what was `missing` and `expired` when the departure overrode readiness")
    recorded_by: str | None
    recorded_at: datetime
    late_entry: bool = Field(description="recorded at a time before readings already stored")
    original_at: datetime | None = Field(description="the time first recorded, if corrected")
    corrected_by: str | None
    corrected_at: datetime | None
    correction_reason: str | None
    voided_at: datetime | None = Field(description="voided by a correction: not in the chain")


class LastReading(Out):
    ts: datetime
    temp_c: float | None
    lat: float | None
    lon: float | None


class ForecastBasis(Out):
    method: Literal["lane_history", "lane_spec"] = Field(
        description="`lane_history`: from the lane's delivered shipments (10 or more); "
                    "`lane_spec`: from its validated expected/max transit and dwell allowances")
    delivered_n: int = Field(description="delivered shipments of the lane the model knows")


class Forecast(Out):
    on_time_probability: float | None = Field(
        description="probability (0–1) of arriving before the hold deadline; null: not yet "
                    "forecast")
    arrival_p50: datetime | None = Field(description="median forecast arrival")
    arrival_p90: datetime | None = Field(description="arrival by which it is 90 % likely")
    forecast_basis: ForecastBasis | None


# The longest hold or delay a what-if considers (30 days: past any qualified hold time).
MAX_WHAT_IF_H = 720.0


class WhatIfIn(StrictBody):
    """An assumption about a shipment's journey from now on."""

    customs_hold_h: float | None = Field(
        default=None, ge=0, le=MAX_WHAT_IF_H, allow_inf_nan=False,
        description="customs holds it this long in total (hours) at the lane's customs waypoint "
                    "still ahead or being passed; without one, a delay of this long")
    delay_h: float | None = Field(default=None, ge=0, le=MAX_WHAT_IF_H, allow_inf_nan=False,
                                  description="a delay of this long (hours) on top")

    @model_validator(mode="after")
    def _something_assumed(self) -> WhatIfIn:
        if self.customs_hold_h is None and self.delay_h is None:
            raise InvalidField("customs_hold_h", "give customs_hold_h and/or delay_h")
        return self


class WhatIfOut(Forecast):
    shipment_id: uuid.UUID
    customs_hold_h: float | None
    delay_h: float | None
    hold_deadline: datetime
    margin_h: float = Field(description="hold deadline − arrival_p50 (hours) under the assumption")


class ShipmentSummary(Forecast):
    """A row of the fleet overview: identity, status and what is left before each limit bites."""

    id: uuid.UUID
    reference: str
    status: str
    lane_id: uuid.UUID = Field(description="the lane the shipment is on (after any reroute)")
    planned_lane_id: uuid.UUID = Field(description="the lane it was registered on")
    product_id: uuid.UUID
    packaging_id: uuid.UUID
    origin_site_id: uuid.UUID
    destination_site_id: uuid.UUID
    origin_site_name: str
    origin_country: str = Field(description="ISO 3166-1 alpha-2")
    destination_site_name: str
    destination_country: str = Field(description="ISO 3166-1 alpha-2")
    lane_name: str = Field(description="the name of `lane_id`")
    whereabouts: Whereabouts = Field(description="the current stop or leg on the lane")
    logger_ids: list[str]
    packed_at: datetime
    departed_at: datetime | None
    delivered_at: datetime | None
    received_at: datetime | None
    recharged_at: datetime | None = Field(description="the latest recharge (re-iced, LN2 "
                                                      "recharged): the hold clock restarted")
    last_reading: LastReading | None
    hold_deadline: datetime | None
    expected_arrival: datetime | None
    margin_h: float | None
    at_risk: bool
    stability_budget_used_s: float
    stability_budget_left_s: float | None
    stability_budget_s: float = Field(description="the product's whole stability budget")
    projected_breach_at: datetime | None
    open_alerts: int
    open_critical_alerts: int
    release_decision: str | None


class SignatureOut(Out):
    """An electronic signature's manifest (21 CFR 11.50): printed name, email, when, meaning."""

    signer_name: str
    signer_email: str
    signed_at: datetime
    meaning: str


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
    signature: SignatureOut | None = Field(
        default=None, description="The release decision's electronic signature manifest")
    events: list[ShipmentEventOut]
