"""Shipments: registration, custody/status events, the fleet overview and one shipment's summary."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from alerts.forecast import store as forecasts
from alerts.forecast.core import Assumption
from app.api.deps import (
    CurrentPrincipal,
    SessionDep,
    SettingsDep,
    require_decision_roles,
    require_roles,
    shipment_scope,
)
from app.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, paginate
from app.core.errors import Forbidden
from app.core.models import Shipment, utcnow
from app.core.security import Principal
from app.dashboard import overview
from app.schemas.shipments import (
    EventCorrectionIn,
    ShipmentDetail,
    ShipmentEventIn,
    ShipmentEventOut,
    ShipmentIn,
    ShipmentStatus,
    ShipmentSummary,
    WhatIfIn,
    WhatIfOut,
)
from app.services import corrections, fleet, timeline
from app.services import shipments as svc

router = APIRouter(tags=["shipments"])
Coordinator = Annotated[Principal, Depends(require_roles("coordinator"))]
EventRecorder = Annotated[Principal, Depends(require_roles("coordinator", "site"))]
# Correcting the custody record is a person's decision: a coordinator's, never the admin role's.
Corrector = Annotated[Principal, Depends(require_decision_roles("coordinator"))]


async def shipment_detail(
    session: Any, principal: Principal, shipment_id: uuid.UUID, risk_probability: float
) -> dict[str, Any]:
    await svc.get_visible_shipment(session, principal, shipment_id)
    row = (await session.execute(svc.summary_select().where(Shipment.id == shipment_id))).one()
    data = svc.summary_dict(row, risk_probability)
    data["events"] = await svc.shipment_events(session, shipment_id)
    await fleet.add_context(session, [data])
    return data


@router.post("/shipments", status_code=status.HTTP_201_CREATED, response_model=ShipmentDetail)
async def create_shipment(
    body: ShipmentIn, session: SessionDep, principal: Coordinator, settings: SettingsDep
) -> ShipmentDetail:
    shipment = await svc.create_shipment(session, principal, body)
    return ShipmentDetail.model_validate(await shipment_detail(
        session, principal, shipment.id, settings.risk_probability))


@router.get("/shipments", response_model=Page[ShipmentSummary])
async def list_shipments(
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    status_: Annotated[
        list[ShipmentStatus] | None,
        Query(alias="status", description="one or more statuses (repeat the parameter)"),
    ] = None,
    site_id: Annotated[uuid.UUID | None, Query(description="origin or destination site")] = None,
    lane_id: uuid.UUID | None = None,
    at_risk: Annotated[bool | None, Query(
        description="true: the engine flags it (hold-time margin, alerts) or, in flight, its "
                    "on-time probability is below COLDCHAIN_RISK_PROBABILITY")] = None,
    has_open_alerts: Annotated[
        bool | None, Query(description="true: with open alerts; false: without")
    ] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="text in the reference")
    ] = None,
    sort: Annotated[
        overview.Sort,
        Query(description="`risk`: open critical alerts first, then in flight before "
                          "finished, the lowest on-time probability, the smallest hold-time "
                          "margin, then most open alerts; `created`: registration order"),
    ] = "risk",
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[ShipmentSummary]:
    """The fleet overview, answered from maintained shipment state (never by scanning readings)."""
    stmt = overview.filtered(
        shipment_scope(svc.summary_select(), principal),
        statuses=status_, site_id=site_id, lane_id=lane_id, at_risk=at_risk,
        has_open_alerts=has_open_alerts, text=q, risk_probability=settings.risk_probability,
    )
    keys, key_of = overview.sort_keys(sort)
    rows, next_cursor = await paginate(
        session, stmt, keys, cursor=cursor, limit=limit, key_of=key_of
    )
    items = [svc.summary_dict(r, settings.risk_probability) for r in rows]
    await fleet.add_context(session, items)
    return Page(items=[ShipmentSummary.model_validate(i) for i in items], next_cursor=next_cursor)


@router.get("/shipments/{shipment_id}", response_model=ShipmentDetail)
async def get_shipment(
    shipment_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal,
    settings: SettingsDep,
) -> ShipmentDetail:
    return ShipmentDetail.model_validate(await shipment_detail(
        session, principal, shipment_id, settings.risk_probability))


@router.post(
    "/shipments/{shipment_id}/events",
    status_code=status.HTTP_201_CREATED,
    response_model=ShipmentEventOut,
)
async def add_event(
    shipment_id: uuid.UUID, body: ShipmentEventIn, session: SessionDep, principal: EventRecorder
) -> ShipmentEventOut:
    """Record a custody event. It must fit the chain in time; one dated before readings already
    stored for the shipment is a late entry: only a coordinator records it, with a
    `correction_reason` (409 otherwise). `recharged` and `rerouted` (with `lane_id`) are
    recorded by a coordinator: the hold clock restarts at `at`, or the new lane applies from
    `at` (expected arrival, waypoints, corridor); the status stays as it is. `departed` while
    the shipment is not ready (`GET /shipments/{id}/readiness`) is refused (409, listing what
    is `missing` and `expired`) unless a coordinator gives `override_reason` (audited as
    `readiness.override`, shown on the event and in the release report)."""
    if body.correction_reason is not None and principal.role != "coordinator":
        raise Forbidden(f"role '{principal.role}' may not do this: a late entry "
                        "(correction_reason) is recorded by a coordinator key")
    if body.override_reason is not None and principal.role != "coordinator":
        raise Forbidden(f"role '{principal.role}' may not do this: a departure that overrides "
                        "readiness (override_reason) is recorded by a coordinator key")
    if body.type in timeline.CONTINGENCY and principal.role != "coordinator":
        # They move the hold deadline and the lane the shipment is judged by: a coordinator's
        # decision on the record, never the admin role's.
        raise Forbidden(f"role '{principal.role}' may not do this: a '{body.type}' event is "
                        "recorded by a coordinator key")
    return ShipmentEventOut.model_validate(
        await svc.add_event(session, principal, shipment_id, body))


@router.post(
    "/shipments/{shipment_id}/events/{event_id}/corrections",
    status_code=status.HTTP_201_CREATED,
    response_model=ShipmentEventOut,
)
async def correct_event(
    shipment_id: uuid.UUID, event_id: uuid.UUID, body: EventCorrectionIn, session: SessionDep,
    principal: Corrector,
) -> ShipmentEventOut:
    """A coordinator corrects a recorded event, with a reason: a new time (`at`) that still fits
    the chain, or `void: true` for one recorded in error (the latest first). Nothing is deleted:
    the event keeps its first time and the correction; readings stay stored, and which of them
    are the shipment's record follows the corrected receipt. Audited with before and after."""
    return ShipmentEventOut.model_validate(
        await corrections.correct_event(session, principal, shipment_id, event_id, body))


@router.get("/shipments/{shipment_id}/events", response_model=list[ShipmentEventOut])
async def list_events(
    shipment_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> list[ShipmentEventOut]:
    await svc.get_visible_shipment(session, principal, shipment_id)
    return [ShipmentEventOut.model_validate(e) for e in await svc.shipment_events(session, shipment_id)]


@router.post("/shipments/{shipment_id}/what-if", response_model=WhatIfOut)
async def shipment_what_if(
    shipment_id: uuid.UUID, body: WhatIfIn, session: SessionDep, principal: CurrentPrincipal
) -> WhatIfOut:
    """The shipment's arrival forecast from now under an assumption — a customs hold of
    `customs_hold_h` in total, a delay of `delay_h` — and the margin it would leave (hold
    deadline − median arrival). Computed from the stored forecast (before the engine's first,
    from the departure) and the lane's model; nothing is stored."""
    await svc.get_visible_shipment(session, principal, shipment_id)
    assumption = Assumption(customs_hold_h=body.customs_hold_h or 0.0, delay_h=body.delay_h or 0.0)
    where, p = await forecasts.what_if(session, shipment_id, utcnow(), assumption)
    return WhatIfOut.model_validate({
        "shipment_id": shipment_id, "customs_hold_h": body.customs_hold_h,
        "delay_h": body.delay_h, "hold_deadline": where.hold_deadline,
        "on_time_probability": p.on_time_probability, "arrival_p50": p.arrival_p50,
        "arrival_p90": p.arrival_p90,
        "forecast_basis": {"method": p.method, "delivered_n": p.delivered_n},
        "margin_h": p.margin_h(where.hold_deadline),
    })
