"""Alerts (list, one, acknowledge, resolve) and a shipment's excursions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, tuple_

from alerts import actions
from app.api.deps import CurrentPrincipal, SessionDep, require_decision_roles, shipment_scope
from app.api.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    decode_cursor,
    encode_cursor,
    paginate,
)
from app.core.errors import InvalidField
from app.core.models import Alert, AlertEvent, Excursion, Shipment, utcnow
from app.core.models.alerts import ALERT_KINDS
from app.core.security import Principal
from app.services.shipments import get_visible_shipment

router = APIRouter(tags=["alerts"])
# Acknowledging and resolving are people's decisions on the record: never the admin role's.
Acknowledger = Annotated[Principal, Depends(require_decision_roles("coordinator", "site", "qp"))]
Resolver = Annotated[Principal, Depends(require_decision_roles("coordinator", "qp"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
AlertState = Literal["open", "escalated", "acknowledged", "resolved", "live"]
AlertKind = Literal[ALERT_KINDS]  # type: ignore[valid-type]


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    shipment_id: uuid.UUID
    shipment_reference: str | None = None
    kind: str
    severity: Literal["info", "warning", "critical"]
    state: str
    opened_at: datetime
    condition_since: datetime = Field(description="Device time the condition began")
    retroactive: bool = Field(description="Found in late data, after the fact")
    resolved_at: datetime | None
    message: str | None
    details: dict[str, Any] | None
    peak_c: float | None = Field(
        description="Temperature kinds: the worst value across loggers, in the direction of the "
                    "breach (null for other kinds)")
    occurrences: int
    last_evidence_at: datetime | None
    severity_since: datetime | None
    reopened_at: datetime | None = Field(
        description="When a new episode or a worse severity put it back to open after an "
                    "acknowledgement (escalation waits from there)")
    escalated_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_comment: str | None
    resolved_by: str | None
    resolution: str | None


class AlertEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    type: str
    at: datetime
    actor: str | None
    comment: str | None
    data: dict[str, Any]


class AlertDetail(AlertOut):
    events: list[AlertEventOut]


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    comment: str | None = Field(default=None, max_length=2000,
                                description="Required to acknowledge a critical alert and to resolve")


class ExcursionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    logger_id: str | None
    kind: str
    start: datetime
    end: datetime | None
    duration_s: float = Field(description="Time in the condition by sample-and-hold")
    unknown_s: float = Field(description="Time within [start, end] past the max gap")
    peak_c: float | None
    alarmed: bool
    retroactive: bool


def _alert_dict(alert: Alert, reference: str | None) -> dict[str, Any]:
    data = {c.key: getattr(alert, c.key) for c in alert.__mapper__.column_attrs}
    data["shipment_reference"] = reference
    return data


def _alert_out(alert: Alert, reference: str | None) -> AlertOut:
    return AlertOut.model_validate(_alert_dict(alert, reference))


@router.get("/alerts", response_model=Page[AlertOut])
async def list_alerts(
    session: SessionDep, principal: CurrentPrincipal, shipment_id: uuid.UUID | None = None,
    state: AlertState | None = None, kind: AlertKind | None = None,
    severity: Literal["info", "warning", "critical"] | None = None,
    retroactive: bool | None = None, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT,
) -> Page[AlertOut]:
    """Newest first. `state=live` is every alert not yet resolved."""
    stmt = shipment_scope(
        select(Alert, Shipment.reference).join(Shipment, Shipment.id == Alert.shipment_id),
        principal,
    )
    if shipment_id is not None:
        stmt = stmt.where(Alert.shipment_id == shipment_id)
    if state == "live":
        stmt = stmt.where(Alert.state != "resolved")
    elif state is not None:
        stmt = stmt.where(Alert.state == state)
    if kind is not None:
        stmt = stmt.where(Alert.kind == kind)
    if severity is not None:
        stmt = stmt.where(Alert.severity == severity)
    if retroactive is not None:
        stmt = stmt.where(Alert.retroactive.is_(retroactive))
    if cursor:
        opened, alert_id = decode_cursor(cursor, 2)
        if not isinstance(opened, datetime) or not isinstance(alert_id, uuid.UUID):
            raise InvalidField("cursor", "not a cursor returned by this API")
        stmt = stmt.where(tuple_(Alert.opened_at, Alert.id) < tuple_(opened, alert_id))
    rows = (await session.execute(
        stmt.order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(limit + 1))).all()
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1][0]
        next_cursor = encode_cursor([last.opened_at, last.id])
    return Page(items=[_alert_out(a, ref) for a, ref in rows[:limit]], next_cursor=next_cursor)


@router.get("/alerts/{alert_id}", response_model=AlertDetail)
async def get_alert(
    alert_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> AlertDetail:
    """One alert with its transitions, oldest first."""
    alert, shipment = await actions.get_visible_alert(session, principal, alert_id)
    events = (await session.scalars(
        select(AlertEvent).where(AlertEvent.alert_id == alert.id).order_by(AlertEvent.id))).all()
    return AlertDetail.model_validate({**_alert_dict(alert, shipment.reference), "events": events})


@router.post("/alerts/{alert_id}/ack", response_model=AlertOut)
async def acknowledge_alert(
    alert_id: uuid.UUID, body: CommentIn, session: SessionDep, principal: Acknowledger
) -> AlertOut:
    """Acknowledge; a critical alert needs a `comment` (422 without one)."""
    alert = await actions.acknowledge(session, principal, alert_id, body.comment, now=utcnow())
    return _alert_out(alert, None)


@router.post("/alerts/{alert_id}/resolve", response_model=AlertOut)
async def resolve_alert(
    alert_id: uuid.UUID, body: CommentIn, session: SessionDep, principal: Resolver
) -> AlertOut:
    """Resolve by hand with a reason in `comment` (e.g. sensor lost or faulty)."""
    alert = await actions.resolve(session, principal, alert_id, body.comment, now=utcnow())
    return _alert_out(alert, None)


@router.get("/shipments/{shipment_id}/excursions", response_model=Page[ExcursionOut])
async def list_excursions(
    shipment_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal,
    kind: AlertKind | None = None, alarmed: bool | None = None, cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[ExcursionOut]:
    """Every excursion (rule 3: first reading out of range to first back in), in time order."""
    await get_visible_shipment(session, principal, shipment_id)
    stmt = select(Excursion).where(Excursion.shipment_id == shipment_id)
    if kind is not None:
        stmt = stmt.where(Excursion.kind == kind)
    if alarmed is not None:
        stmt = stmt.where(Excursion.alarmed.is_(alarmed))
    rows, next_cursor = await paginate(
        session, stmt, [Excursion.start, Excursion.id], cursor=cursor, limit=limit,
        key_of=lambda r: [r[0].start, r[0].id],
    )
    return Page(items=[ExcursionOut.model_validate(r[0]) for r in rows], next_cursor=next_cursor)
