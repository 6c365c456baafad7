"""Release report (JSON, CSV, PDF, EPCIS), the QP's release decision, and lane performance."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import func

from app.api.deps import CurrentPrincipal, SessionDep, now_of, require_decision_roles, require_roles
from app.api.disposition import content_disposition
from app.api.metrics import PEOPLE_AUTH, refused
from app.api.routes.shipments import shipment_detail
from app.core import audit
from app.core.errors import Conflict, Forbidden, InvalidField, Problem
from app.core.models import utcnow
from app.core.security import Principal
from app.core.signatures import MEANINGS, signature_manifest
from app.dashboard.performance import lane_performance
from app.reports import data
from app.reports.render import Format, render
from app.schemas.common import UtcDatetime
from app.schemas.dashboard import LanePerformanceOut, ReleaseIn
from app.schemas.shipments import ShipmentDetail
from app.services import auth
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


@router.post("/shipments/{shipment_id}/release", response_model=ShipmentDetail, responses={
    403: {"description": "Not a person with the qp role (API keys cannot sign), or a wrong "
                         "signature (it counts toward the account's lockout)"},
    429: {"description": "The account is locked after 5 failed logins or signatures"}})
async def release_shipment(
    shipment_id: uuid.UUID, body: ReleaseIn, request: Request, session: SessionDep, principal: QP
) -> dict[str, Any]:
    """The Qualified Person's decision, once the shipment has arrived: an electronic signature
    (21 CFR Part 11). Made by a person signed in with the qp role who re-enters their password
    (`signature`); the manifest — printed name, email, date and time, meaning ("Released for
    clinical use" / "Rejected") — is stored with the decision, in the audit trail, in
    GET /shipments/{id} and in the release report."""
    if principal.user_id is None:
        raise Forbidden("a release decision is an electronic signature: API keys cannot sign; "
                        "sign in as a person with the qp role")
    if body.signature is None:
        raise InvalidField("signature", "required: re-enter your password to sign the decision")
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
    now = now_of(request)
    signer = await auth.signer(session, principal, body.signature.email, body.signature.password, now)
    if isinstance(signer, Problem):
        await session.commit()  # a wrong signature counts toward the lockout whatever is answered
        PEOPLE_AUTH.labels("signature", refused(signer)).inc()
        raise signer
    PEOPLE_AUTH.labels("signature", "ok").inc()
    before = snapshot(shipment)
    shipment.release_decision = body.decision
    shipment.release_reason = body.reason
    shipment.released_by = principal.actor
    shipment.released_at = now
    shipment.signer_user_id, shipment.signer_name = signer.id, signer.name
    shipment.signer_email, shipment.signed_at = signer.email, now
    shipment.signature_meaning = MEANINGS[body.decision]
    shipment.updated_at = func.now()
    await session.flush()
    await session.refresh(shipment)
    after = snapshot(shipment)
    await audit.record(
        session, principal, action=f"release.{body.decision}", entity_type="shipment",
        entity_id=shipment.id, before=before,
        after={**after, "signature": signature_manifest(after)}, reason=body.reason,
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
