"""Arrival forecasts: one per shipment (kept current by the alerts engine) and one model per lane."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models.base import Base, created_at_column


class ShipmentForecast(Base):
    """The arrival distribution of a shipment as last judged, and where it was on its lane then
    (so a what-if recomputes from this row and the lane model, never from raw history)."""

    __tablename__ = "shipment_forecasts"
    shipment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), primary_key=True
    )
    lane_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lanes.id", ondelete="CASCADE"))
    on_time_probability: Mapped[float] = mapped_column(Float, index=True)
    arrival_p50: Mapped[datetime]
    arrival_p90: Mapped[datetime]
    method: Mapped[str] = mapped_column(String(16))
    delivered_n: Mapped[int] = mapped_column(Integer)
    hold_deadline: Mapped[datetime]
    leg_started_at: Mapped[datetime | None]
    segment: Mapped[int] = mapped_column(Integer)
    segment_since: Mapped[datetime | None]
    overrun_h: Mapped[float] = mapped_column(Float)
    delivered_at: Mapped[datetime | None]
    computed_at: Mapped[datetime] = created_at_column()


class LaneForecastModel(Base):
    """A lane's delivered history reduced to what forecasts need: every delivery's transit time
    and, where each waypoint passage was seen, its segments (hours). Rebuilt when the lane's
    deliveries change (`delivered_n`, `last_delivered_at` no longer match)."""

    __tablename__ = "lane_forecast_models"
    lane_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("lanes.id", ondelete="CASCADE"), primary_key=True
    )
    delivered_n: Mapped[int] = mapped_column(Integer)
    last_delivered_at: Mapped[datetime | None]
    totals_h: Mapped[list[float]] = mapped_column(JSONB)
    segments_h: Mapped[list[Any]] = mapped_column(JSONB)
    built_at: Mapped[datetime] = created_at_column()
