"""Shipments: registration, custody/status events, the fleet overview and one shipment's summary."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from app.api.deps import CurrentPrincipal, SessionDep, require_roles, shipment_scope
from app.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, paginate
from app.models import Shipment, ShipmentState
from app.schemas.shipments import (
    ShipmentDetail,
    ShipmentEventIn,
    ShipmentEventOut,
    ShipmentIn,
    ShipmentStatus,
    ShipmentSummary,
)
from app.security import Principal
from app.services import shipments as svc

router = APIRouter(tags=["shipments"])
Coordinator = Annotated[Principal, Depends(require_roles("coordinator"))]
EventRecorder = Annotated[Principal, Depends(require_roles("coordinator", "site"))]


async def _detail(session: Any, principal: Principal, shipment_id: uuid.UUID) -> dict[str, Any]:
    await svc.get_visible_shipment(session, principal, shipment_id)
    row = (await session.execute(svc.summary_select().where(Shipment.id == shipment_id))).one()
    data = svc.summary_dict(row)
    data["events"] = await svc.shipment_events(session, shipment_id)
    return data


@router.post("/shipments", status_code=status.HTTP_201_CREATED, response_model=ShipmentDetail)
async def create_shipment(
    body: ShipmentIn, session: SessionDep, principal: Coordinator
) -> dict[str, Any]:
    shipment = await svc.create_shipment(session, principal, body)
    return await _detail(session, principal, shipment.id)


@router.get("/shipments", response_model=Page[ShipmentSummary])
async def list_shipments(
    session: SessionDep,
    principal: CurrentPrincipal,
    status_: Annotated[ShipmentStatus | None, Query(alias="status")] = None,
    site_id: uuid.UUID | None = None,
    at_risk: bool | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> dict[str, Any]:
    stmt = shipment_scope(svc.summary_select(), principal)
    if status_ is not None:
        stmt = stmt.where(Shipment.status == status_)
    if site_id is not None:
        stmt = stmt.where(
            (Shipment.origin_site_id == site_id) | (Shipment.destination_site_id == site_id)
        )
    if at_risk is not None:
        stmt = stmt.where(ShipmentState.at_risk.is_(at_risk) if at_risk else
                          (ShipmentState.at_risk.is_(False) | ShipmentState.at_risk.is_(None)))
    rows, next_cursor = await paginate(
        session, stmt, [Shipment.created_at, Shipment.id], cursor=cursor, limit=limit,
        key_of=lambda r: [r[0].created_at, r[0].id],
    )
    return {"items": [svc.summary_dict(r) for r in rows], "next_cursor": next_cursor}


@router.get("/shipments/{shipment_id}", response_model=ShipmentDetail)
async def get_shipment(
    shipment_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return await _detail(session, principal, shipment_id)


@router.post(
    "/shipments/{shipment_id}/events",
    status_code=status.HTTP_201_CREATED,
    response_model=ShipmentEventOut,
)
async def add_event(
    shipment_id: uuid.UUID, body: ShipmentEventIn, session: SessionDep, principal: EventRecorder
) -> Any:
    return await svc.add_event(session, principal, shipment_id, body)


@router.get("/shipments/{shipment_id}/events", response_model=list[ShipmentEventOut])
async def list_events(
    shipment_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> Any:
    await svc.get_visible_shipment(session, principal, shipment_id)
    return await svc.shipment_events(session, shipment_id)
