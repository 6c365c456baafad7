"""Request dependencies: one session (one transaction) per request, the acting principal, scoping."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Forbidden, Unauthorized
from app.models import ApiKey, Shipment, utcnow
from app.security import Principal, hash_key, key_prefix, keys_equal
from app.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")
_LAST_USED_RESOLUTION = timedelta(minutes=1)


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the handler returns, rolled back on error."""
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_principal(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("an API key is required: Authorization: Bearer <key>")
    key = credentials.credentials
    if settings.admin_api_key and keys_equal(key, settings.admin_api_key):
        principal = Principal(actor="admin-bootstrap", role="admin")
    else:
        principal = await _principal_from_key(session, key)
    request.state.principal = principal
    return principal


async def _principal_from_key(session: AsyncSession, key: str) -> Principal:
    prefix = key_prefix(key)
    row = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix)) if prefix else None
    now = utcnow()
    if (
        row is None
        or not keys_equal(hash_key(key).hex(), bytes(row.key_hash).hex())
        or row.revoked_at is not None
        or (row.expires_at is not None and row.expires_at <= now)
    ):
        raise Unauthorized("the API key is unknown, revoked or expired")
    if row.last_used_at is None or now - row.last_used_at > _LAST_USED_RESOLUTION:
        row.last_used_at = now
    return Principal(actor=f"key:{row.prefix}", role=row.role, site_id=row.site_id, key_id=row.id)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: str) -> Callable[..., Any]:
    """A dependency admitting only the given roles (admin is always admitted)."""
    allowed = {"admin", *roles}

    async def _check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            raise Forbidden(f"role '{principal.role}' may not do this")
        return principal

    return _check


def shipment_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """Restrict a statement over shipments to those a site principal may see."""
    if principal.is_site:
        return stmt.where(
            or_(
                Shipment.origin_site_id == principal.site_id,
                Shipment.destination_site_id == principal.site_id,
            )
        )
    return stmt


def can_see_shipment(principal: Principal, shipment: Shipment) -> bool:
    return not principal.is_site or principal.site_id in (
        shipment.origin_site_id,
        shipment.destination_site_id,
    )
