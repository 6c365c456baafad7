"""Quarantined ingest input: what loggers sent that could not be stored, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from app.api.deps import SessionDep, require_roles
from app.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, paginate
from app.core.models import IngestRejection
from app.core.security import Principal
from app.schemas.common import UtcDatetime

router = APIRouter(tags=["ingest"])
Reader = Annotated[Principal, Depends(require_roles("coordinator"))]
# Each stored payload is already bounded at ingest (64 KiB); a list answer shows at most this much.
PAYLOAD_PREVIEW_BYTES = 4096


class RejectionOut(BaseModel):
    id: int
    reason: str = Field(description="closed set, e.g. malformed_json, ts_in_future, unknown_logger")
    detail: str | None
    topic: str
    logger_id: str | None
    received_at: datetime
    payload: str = Field(description="the input as text (invalid UTF-8 escaped), bounded")
    payload_truncated: bool
    payload_size: int = Field(description="size of the whole MQTT payload in bytes")
    payload_sha256: str = Field(description="hex SHA-256 of the whole MQTT payload")
    reading_index: int | None = Field(description="position of the reading in a batch or SenML pack")


def _out(row: IngestRejection) -> RejectionOut:
    evidence = bytes(row.payload or b"")
    return RejectionOut(
        id=row.id, reason=row.reason, detail=row.detail, topic=row.topic,
        logger_id=row.logger_id, received_at=row.received_at,
        payload=evidence[:PAYLOAD_PREVIEW_BYTES].decode("utf-8", "backslashreplace"),
        payload_truncated=len(evidence) > PAYLOAD_PREVIEW_BYTES
        or (row.reading_index is None and len(evidence) < row.payload_size),
        payload_size=row.payload_size, payload_sha256=bytes(row.payload_sha256).hex(),
        reading_index=row.reading_index,
    )


@router.get("/ingest/rejections", response_model=Page[RejectionOut])
async def list_rejections(
    session: SessionDep,
    _: Reader,
    reason: Annotated[str | None, Query(max_length=64)] = None,
    logger_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[UtcDatetime | None, Query(description="received at or after")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[RejectionOut]:
    """Quarantined input in the order it arrived (oldest first; use `since` for recent ones)."""
    stmt = select(IngestRejection)
    if reason:
        stmt = stmt.where(IngestRejection.reason == reason)
    if logger_id:
        stmt = stmt.where(IngestRejection.logger_id == logger_id)
    if since:
        stmt = stmt.where(IngestRejection.received_at >= since)
    rows, next_cursor = await paginate(
        session, stmt, [IngestRejection.id], cursor=cursor, limit=limit,
        key_of=lambda r: [r[0].id],
    )
    return Page(items=[_out(r[0]) for r in rows], next_cursor=next_cursor)
