"""API keys (admin only): created with the key shown once, listed by prefix, expired, revoked."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy import select

from app.api.deps import SessionDep, require_roles
from app.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, paginate
from app.core import audit
from app.core.errors import InvalidField
from app.core.models import ApiKey, utcnow
from app.core.security import Principal
from app.schemas.reference import ApiKeyCreated, ApiKeyIn, ApiKeyOut
from app.services import reference as svc

router = APIRouter(tags=["api keys"])
Admin = Annotated[Principal, Depends(require_roles())]


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_api_key(body: ApiKeyIn, session: SessionDep, principal: Admin) -> ApiKeyCreated:
    """A new key; `key` is in this answer only (stored as a SHA-256 hash), `prefix` identifies it."""
    if body.expires_at is not None and body.expires_at <= utcnow():
        raise InvalidField("expires_at", "must be in the future")
    row, key = await svc.create_api_key(session, principal, body)
    return ApiKeyCreated(**ApiKeyOut.model_validate(row).model_dump(), key=key)


@router.get("/api-keys", response_model=Page[ApiKeyOut])
async def list_api_keys(
    session: SessionDep, _: Admin, cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    active: Annotated[bool | None, Query(description="only usable (true) or unusable keys")] = None,
) -> Page[ApiKeyOut]:
    stmt = select(ApiKey)
    if active is not None:
        now = utcnow()
        usable = ApiKey.revoked_at.is_(None) & (ApiKey.expires_at.is_(None) | (ApiKey.expires_at > now))
        stmt = stmt.where(usable if active else ~usable)
    rows, next_cursor = await paginate(
        session, stmt, [ApiKey.created_at, ApiKey.id], cursor=cursor, limit=limit,
        key_of=lambda r: [r[0].created_at, r[0].id],
    )
    return Page(items=[ApiKeyOut.model_validate(r[0]) for r in rows], next_cursor=next_cursor)


@router.get("/api-keys/{key_id}", response_model=ApiKeyOut)
async def get_api_key(key_id: uuid.UUID, session: SessionDep, _: Admin) -> ApiKeyOut:
    return ApiKeyOut.model_validate(await svc.get_or_404(session, ApiKey, key_id, "api key"))


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut)
async def revoke_api_key(
    key_id: uuid.UUID, session: SessionDep, principal: Admin,
    reason: Annotated[str | None, Query(max_length=1000, description="why (audited)")] = None,
) -> ApiKeyOut:
    """Revoke at once and for good (idempotent: revoking again changes nothing)."""
    row = await svc.get_or_404(session, ApiKey, key_id, "api key")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()
        await audit.record(
            session, principal, action="revoke", entity_type="api_key", entity_id=row.id,
            before={"revoked_at": None}, after={"revoked_at": row.revoked_at.isoformat()},
            reason=reason,
        )
    return ApiKeyOut.model_validate(row)
