"""Creating and reading reference data (sites, profiles, lanes, loggers, API keys), audited."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.core import audit
from app.core.errors import Conflict, InvalidField, NotFound
from app.core.models import ApiKey, Base, Lane, LaneWaypoint, Logger, Packaging, Product, Site
from app.core.scope import PerSite, site_scoped
from app.core.security import Principal, hash_key, new_api_key
from app.schemas.reference import ApiKeyIn, LaneIn, LoggerIn, PackagingIn, ProductIn, SiteIn

M = TypeVar("M", bound=Base)


def snapshot(row: Base) -> dict[str, Any]:
    """A row's column values, for audit before/after records."""
    return {c.key: getattr(row, c.key) for c in row.__mapper__.column_attrs}


async def get_or_404(session: AsyncSession, model: type[M], key: object, name: str) -> M:
    row = await session.get(model, key)
    if row is None:
        raise NotFound(name, key)
    return row


async def get_visible(
    session: AsyncSession, principal: Principal, model: type[M], key: object, name: str,
    per_site: PerSite,
) -> M:
    """The row, or 404 — also when the principal's site may not see it (not leaked)."""
    pk = model.__mapper__.primary_key[0]
    row = await session.scalar(site_scoped(select(model).where(pk == key), principal, per_site))
    if row is None:
        raise NotFound(name, key)
    return row


async def require_exists(session: AsyncSession, model: type[Base], key: object, field: str) -> None:
    if await session.get(model, key) is None:
        raise InvalidField(field, f"no such {model.__tablename__.rstrip('s')}: {key}")


async def _add_audited(
    session: AsyncSession, principal: Principal, row: M, entity_type: str
) -> M:
    session.add(row)
    await session.flush()
    await audit.record(
        session, principal, action="create", entity_type=entity_type,
        entity_id=getattr(row, "id"), after=snapshot(row),  # noqa: B009
    )
    return row


async def create_site(session: AsyncSession, principal: Principal, data: SiteIn) -> Site:
    return await _add_audited(session, principal, Site(**data.model_dump()), "site")


async def create_product(session: AsyncSession, principal: Principal, data: ProductIn) -> Product:
    return await _add_audited(session, principal, Product(**data.model_dump()), "product")


async def create_packaging(
    session: AsyncSession, principal: Principal, data: PackagingIn
) -> Packaging:
    return await _add_audited(session, principal, Packaging(**data.model_dump()), "packaging")


async def create_logger(session: AsyncSession, principal: Principal, data: LoggerIn) -> Logger:
    if await session.get(Logger, data.id) is not None:
        raise Conflict(f"logger {data.id} already exists", field="id")
    return await _add_audited(session, principal, Logger(**data.model_dump()), "logger")


async def create_lane(session: AsyncSession, principal: Principal, data: LaneIn) -> Lane:
    await require_exists(session, Site, data.origin_site_id, "origin_site_id")
    await require_exists(session, Site, data.destination_site_id, "destination_site_id")
    lane = Lane(**data.model_dump(exclude={"waypoints"}))
    lane.waypoints = [
        LaneWaypoint(position=i, **w.model_dump()) for i, w in enumerate(data.waypoints)
    ]
    await _add_audited(session, principal, lane, "lane")
    return await get_lane(session, lane.id)


async def get_lane(session: AsyncSession, lane_id: uuid.UUID) -> Lane:
    lane = await session.scalar(
        select(Lane)
        .where(Lane.id == lane_id)
        .options(selectinload(Lane.waypoints))
        .execution_options(populate_existing=True)
    )
    if lane is None:
        raise NotFound("lane", lane_id)
    return lane


async def create_api_key(
    session: AsyncSession, principal: Principal, data: ApiKeyIn
) -> tuple[ApiKey, str]:
    if data.site_id is not None:
        await require_exists(session, Site, data.site_id, "site_id")
    key, prefix = new_api_key()
    row = ApiKey(
        prefix=prefix, key_hash=hash_key(key), name=data.name, role=data.role,
        site_id=data.site_id, expires_at=data.expires_at, created_by=principal.actor,
    )
    session.add(row)
    await session.flush()
    after = {k: v for k, v in snapshot(row).items() if k != "key_hash"}
    await audit.record(
        session, principal, action="create", entity_type="api_key", entity_id=row.id, after=after
    )
    return row, key
