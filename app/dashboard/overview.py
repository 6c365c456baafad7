"""Fleet overview query: filters and the risk ordering over shipments joined with their state."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal

from sqlalchemy import Select, and_, case, func, literal, or_
from sqlalchemy.sql.elements import ColumnElement

from app.core.models import Shipment, ShipmentForecast, ShipmentState
from app.core.scope import involving_site

Sort = Literal["risk", "created"]
FINISHED = ("delivered", "received")
# Shipments without a computed margin sort after every real margin.
NO_MARGIN = 1e12
# … and shipments not yet forecast after every forecast (a probability is at most 1).
NO_FORECAST = 2.0


# "!" rather than a backslash: SQLAlchemy 2.0.30 (our floor) renders ESCAPE '\\' for asyncpg, which
# PostgreSQL (standard_conforming_strings) refuses as a two-character escape.
LIKE_ESCAPE = "!"


def _like_pattern(text: str) -> str:
    escaped = text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


def filtered(
    stmt: Select[Any], *, statuses: Sequence[str] | None = None, site_id: uuid.UUID | None = None,
    lane_id: uuid.UUID | None = None, at_risk: bool | None = None,
    has_open_alerts: bool | None = None, text: str | None = None,
    risk_probability: float = 0.9,
) -> Select[Any]:
    """`at_risk`: the engine's flag (margin, alerts) or, in flight, an on-time probability below
    `risk_probability` (the statement must join ShipmentForecast)."""
    if statuses:
        stmt = stmt.where(Shipment.status.in_(list(statuses)))
    if site_id is not None:
        stmt = stmt.where(involving_site(site_id))
    if lane_id is not None:
        stmt = stmt.where(Shipment.lane_id == lane_id)
    if at_risk is not None:
        flag = or_(func.coalesce(ShipmentState.at_risk, False).is_(True), and_(
            Shipment.status.not_in(FINISHED),
            func.coalesce(ShipmentForecast.on_time_probability, 1.0) < risk_probability))
        stmt = stmt.where(flag if at_risk else ~flag)
    if has_open_alerts is not None:
        count = func.coalesce(ShipmentState.open_alerts, 0)
        stmt = stmt.where(count > 0 if has_open_alerts else count == 0)
    if text:
        stmt = stmt.where(Shipment.reference.ilike(_like_pattern(text), escape=LIKE_ESCAPE))
    return stmt


def _risk_keys() -> list[ColumnElement[Any]]:
    return [
        -func.coalesce(ShipmentState.open_critical_alerts, 0),
        case((Shipment.status.in_(FINISHED), literal(1)), else_=literal(0)),
        func.coalesce(ShipmentForecast.on_time_probability, NO_FORECAST),
        func.coalesce(ShipmentState.margin_h, NO_MARGIN),
        -func.coalesce(ShipmentState.open_alerts, 0),
        Shipment.id,
    ]


def _risk_key_of(row: Any) -> list[Any]:
    shipment, state, forecast = row[0], row[1], row[-1]
    margin = state.margin_h if state is not None and state.margin_h is not None else NO_MARGIN
    return [
        -(state.open_critical_alerts or 0) if state is not None else 0,
        1 if shipment.status in FINISHED else 0,
        forecast.on_time_probability if forecast is not None else NO_FORECAST,
        margin,
        -(state.open_alerts or 0) if state is not None else 0,
        shipment.id,
    ]


def sort_keys(sort: Sort) -> tuple[list[ColumnElement[Any]], Callable[[Any], list[Any]]]:
    """Keyset columns for `paginate` and how to read them off a row."""
    if sort == "risk":
        return _risk_keys(), _risk_key_of
    return [Shipment.created_at, Shipment.id], lambda r: [r[0].created_at, r[0].id]
