"""Release report (JSON, CSV, PDF, EPCIS), the QP's release decision, and lane performance."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import func

from app.api.deps import CurrentPrincipal, SessionDep, require_decision_roles, require_roles
from app.api.disposition import content_disposition
from app.api.routes.shipments import shipment_detail
from app.core import audit
from app.core.errors import Conflict
from app.core.models import utcnow
from app.core.security import Principal
from app.dashboard.performance import lane_performance
from app.reports import data
from app.reports.render import Format, render
from app.schemas.common import UtcDatetime
from app.schemas.dashboard import LanePerformanceOut, ReleaseIn
from app.schemas.shipments import ShipmentDetail
from app.services import shipments as svc
from app.services.reference import snapshot

router = APIRouter(tags=["release"])
QP = Annotated[Principal, Depends(require_decision_roles("qp"))]
Analyst = Annotated[Principal, Depends(require_roles("coordinator", "qp"))]
RELEASABLE = ("delivered", "received")


@router.get(
    "/shipments/{shipment_id}/report", response_model=None,
    responses={200: {"description": "json: the full report; csv: the complete reading record; "
                                    "pdf: the printable report with the chart; epcis: GS1 EPCIS "
                                    "2.0 JSON-LD with sensor data",
                     "content": {"application/json": {}, "text/csv": {}, "application/pdf": {},
                                 "application/ld+json": {}}}},
)
async def shipment_report(
    shipment_id: uuid.UUID, request: Request, session: SessionDep, principal: CurrentPrincipal,
    format: Annotated[Format, Query(description="json, csv, pdf or epcis")] = "json",  # noqa: A002
) -> Response:
    shipment = await svc.get_visible_shipment(session, principal, shipment_id)
    # The report reads many tables: one REPEATABLE READ snapshot keeps its parts consistent.
    async with request.app.state.sessionmaker() as snap, snap.begin():
        await snap.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        loaded = await data.load(snap, shipment, utcnow())
    base = str(request.base_url) + "api/v1/"
    rendered = await asyncio.to_thread(render, loaded, format, base)
    disposition = "inline" if format == "pdf" else "attachment"
    return Response(rendered.body, media_type=rendered.media_type, headers={
        "Content-Disposition": content_disposition(disposition, rendered.filename),
    })


@router.post("/shipments/{shipment_id}/release", response_model=ShipmentDetail)
async def release_shipment(
    shipment_id: uuid.UUID, body: ReleaseIn, session: SessionDep, principal: QP
) -> dict[str, Any]:
    """The Qualified Person's decision, once the shipment has arrived; recorded in the audit trail."""
    shipment = await svc.get_visible_shipment(session, principal, shipment_id, for_update=True)
    if shipment.status not in RELEASABLE:
        raise Conflict(
            f"a shipment can be released or rejected once delivered; it is '{shipment.status}'",
            field="decision",
        )
    if shipment.release_decision is not None:
        raise Conflict(
            f"the shipment was already {shipment.release_decision} by {shipment.released_by}",
            field="decision",
        )
    before = snapshot(shipment)
    shipment.release_decision = body.decision
    shipment.release_reason = body.reason
    shipment.released_by = principal.actor
    shipment.released_at = utcnow()
    shipment.updated_at = func.now()
    await session.flush()
    await session.refresh(shipment)
    await audit.record(
        session, principal, action=f"release.{body.decision}", entity_type="shipment",
        entity_id=shipment.id, before=before, after=snapshot(shipment), reason=body.reason,
    )
    # Released or rejected once delivered: the forecast no longer flags it, whatever the threshold.
    return await shipment_detail(session, principal, shipment.id, risk_probability=0.0)


@router.get("/lanes/{lane_id}/performance", response_model=LanePerformanceOut,
            tags=["reference data"])
async def get_lane_performance(
    lane_id: uuid.UUID, session: SessionDep, _: Analyst,
    since: Annotated[UtcDatetime | None, Query(description="deliveries from this time on")] = None,
) -> dict[str, Any]:
    """Transit times of delivered shipments against the validated expected/max, dwell per
    waypoint and excursion rate: the evidence that a lane is still valid."""
    return await lane_performance(session, lane_id, since)
