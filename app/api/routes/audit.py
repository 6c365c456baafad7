"""The audit trail: `GET /audit` (filtered, paginated, chain order) and `GET /audit/verify`.

Readable by admin, coordinator and qp keys. Site keys get 403: the trail also records reference
data, key management and other sites' shipments, and a site sees its own shipments' history
through their events, alerts and release report instead.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime
from sqlalchemy import select

from app.api.deps import SessionDep, check_time_range, require_roles
from app.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, paginate
from app.core.audit_verify import KeptHead, verify_chain
from app.core.errors import InvalidField
from app.core.models import AuditRecord
from app.core.security import Principal
from app.schemas.audit import AuditRecordOut, AuditVerifyOut

router = APIRouter(tags=["audit"])
Auditor = Annotated[Principal, Depends(require_roles("coordinator", "qp"))]
Verifier = Annotated[Principal, Depends(require_roles("qp"))]


def _out(row: AuditRecord) -> AuditRecordOut:
    return AuditRecordOut(
        id=row.id, at=row.at, actor=row.actor, role=row.role, action=row.action,
        entity_type=row.entity_type, entity_id=row.entity_id, before=row.before,
        after=row.after, reason=row.reason, prev_hash=bytes(row.prev_hash).hex(),
        hash=bytes(row.hash).hex(),
    )


@router.get("/audit", response_model=Page[AuditRecordOut])
async def list_audit(
    session: SessionDep,
    _: Auditor,
    entity_type: Annotated[str | None, Query(max_length=32, description="e.g. shipment, alert")] = None,
    entity_id: Annotated[str | None, Query(max_length=100)] = None,
    actor: Annotated[str | None, Query(max_length=100, description="e.g. key:1a2b3c4d")] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    start: Annotated[AwareDatetime | None, Query(alias="from", description="RFC 3339, inclusive")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to", description="RFC 3339, exclusive")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[AuditRecordOut]:
    """Audit records in chain order, oldest first; all filters combine (AND)."""
    window = check_time_range(start, end, max_days=0)  # paginated: any span is bounded per page
    stmt = select(AuditRecord)
    for column, value in ((AuditRecord.entity_type, entity_type),
                          (AuditRecord.entity_id, entity_id),
                          (AuditRecord.actor, actor), (AuditRecord.action, action)):
        if value is not None:
            stmt = stmt.where(column == value)
    if window.start is not None:
        stmt = stmt.where(AuditRecord.at >= window.start)
    if window.end is not None:
        stmt = stmt.where(AuditRecord.at < window.end)
    rows, next_cursor = await paginate(
        session, stmt, [AuditRecord.id], cursor=cursor, limit=limit, key_of=lambda r: [r[0].id]
    )
    return Page(items=[_out(r[0]) for r in rows], next_cursor=next_cursor)


@router.get("/audit/verify", response_model=AuditVerifyOut)
async def verify_audit(
    session: SessionDep,
    _: Verifier,
    head_id: Annotated[int | None, Query(ge=1, le=2**63 - 1,  # bigint
                                          description="A head kept elsewhere: its id")] = None,
    head_hash: Annotated[str | None, Query(
        pattern="^[0-9a-fA-F]{64}$", description="…and its hash (64 hex digits)")] = None,
) -> AuditVerifyOut:
    """Walk the whole hash chain now (as `coldchain audit verify` does); admin and qp only.

    With `head_id` and `head_hash` (a checkpoint, an earlier answer's head), `ok` is false unless
    that record is still in the chain with that hash: truncation and wholesale rewriting show.
    """
    if (head_id is None) != (head_hash is None):
        raise InvalidField("head_hash" if head_hash is None else "head_id",
                           "head_id and head_hash go together")
    kept = KeptHead(head_id, bytes.fromhex(head_hash)) if head_id and head_hash else None
    result = await verify_chain(session, kept=kept)
    answer = {name: getattr(result, name) for name in AuditVerifyOut.model_fields}
    answer["gaps"] = [{"first_missing_id": a, "last_missing_id": b} for a, b in result.gaps]
    return AuditVerifyOut.model_validate(answer)
