"""Reference data endpoints: sites, products, packaging, lanes, loggers."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.api.deps import CurrentPrincipal, SessionDep, require_roles
from app.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, paginate
from app.core import scope
from app.core.errors import NotFound
from app.core.models import Lane, Logger, Packaging, Product, Site, utcnow
from app.core.scope import site_scoped
from app.core.security import Principal
from app.schemas.reference import (
    LaneIn,
    LaneOut,
    LoggerIn,
    LoggerOut,
    PackagingIn,
    PackagingOut,
    ProductIn,
    ProductOut,
    RequalificationDue,
    SiteIn,
    SiteOut,
)
from app.services import packaging as packaging_svc
from app.services import reference as svc

router = APIRouter(tags=["reference data"])
Editor = Annotated[Principal, Depends(require_roles("coordinator"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
OutT = TypeVar("OutT", bound=BaseModel)


async def _page(
    session: Any, stmt: Any, key: Any, cursor: str | None, limit: int, out: type[OutT]
) -> Page[OutT]:
    rows, next_cursor = await paginate(
        session, stmt, [key], cursor=cursor, limit=limit, key_of=lambda r: [getattr(r[0], key.key)]
    )
    return Page(items=[out.model_validate(r[0]) for r in rows], next_cursor=next_cursor)


@router.post("/sites", status_code=status.HTTP_201_CREATED, response_model=SiteOut)
async def create_site(body: SiteIn, session: SessionDep, principal: Editor) -> SiteOut:
    return SiteOut.model_validate(await svc.create_site(session, principal, body))


@router.get("/sites", response_model=Page[SiteOut])
async def list_sites(
    session: SessionDep, principal: CurrentPrincipal, cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[SiteOut]:
    stmt = site_scoped(select(Site), principal, lambda site: Site.id == site)
    return await _page(session, stmt, Site.id, cursor, limit, SiteOut)


@router.get("/sites/{site_id}", response_model=SiteOut)
async def get_site(site_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> SiteOut:
    if not principal.sees_site(site_id):
        raise NotFound("site", site_id)
    return SiteOut.model_validate(await svc.get_or_404(session, Site, site_id, "site"))


@router.post("/products", status_code=status.HTTP_201_CREATED, response_model=ProductOut)
async def create_product(body: ProductIn, session: SessionDep, principal: Editor) -> ProductOut:
    return ProductOut.model_validate(await svc.create_product(session, principal, body))


@router.get("/products", response_model=Page[ProductOut])
async def list_products(
    session: SessionDep, principal: CurrentPrincipal, cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[ProductOut]:
    """Every product profile; a site key only those of its own site's shipments."""
    stmt = site_scoped(select(Product), principal, scope.products_of_site)
    return await _page(session, stmt, Product.id, cursor, limit, ProductOut)


@router.get("/products/{product_id}", response_model=ProductOut)
async def get_product(
    product_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> ProductOut:
    return ProductOut.model_validate(await svc.get_visible(
        session, principal, Product, product_id, "product", scope.products_of_site
    ))


@router.post("/packaging", status_code=status.HTTP_201_CREATED, response_model=PackagingOut)
async def create_packaging(body: PackagingIn, session: SessionDep, principal: Editor) -> PackagingOut:
    return PackagingOut.model_validate(await svc.create_packaging(session, principal, body))


@router.get("/packaging", response_model=Page[PackagingOut])
async def list_packaging(
    session: SessionDep, principal: CurrentPrincipal, cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[PackagingOut]:
    """Every packaging profile; a site key only those of its own site's shipments."""
    stmt = site_scoped(select(Packaging), principal, scope.packaging_of_site)
    return await _page(session, stmt, Packaging.id, cursor, limit, PackagingOut)


@router.get("/packaging/requalification-due", response_model=list[RequalificationDue])
async def requalification_due(
    session: SessionDep, principal: CurrentPrincipal,
    within_days: Annotated[int, Query(ge=0, le=3650)] = packaging_svc.DUE_WITHIN_DAYS,
) -> list[RequalificationDue]:
    """The fleet's packaging whose requalification ends within `within_days` (default 30) of
    today (UTC) or has ended, soonest first, with how many active shipments are packed in it;
    a site key sees the packaging of its own shipments only."""
    rows = await packaging_svc.requalification_due(
        session, principal, today=utcnow().date(), within_days=within_days)
    return [RequalificationDue.model_validate(r) for r in rows]


@router.get("/packaging/{packaging_id}", response_model=PackagingOut)
async def get_packaging(
    packaging_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> PackagingOut:
    return PackagingOut.model_validate(await svc.get_visible(
        session, principal, Packaging, packaging_id, "packaging", scope.packaging_of_site
    ))


@router.post("/lanes", status_code=status.HTTP_201_CREATED, response_model=LaneOut)
async def create_lane(body: LaneIn, session: SessionDep, principal: Editor) -> LaneOut:
    return LaneOut.model_validate(await svc.create_lane(session, principal, body))


@router.get("/lanes", response_model=Page[LaneOut])
async def list_lanes(
    session: SessionDep, principal: CurrentPrincipal, cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[LaneOut]:
    """Every lane; a site key only lanes from or to its site and those its shipments travel."""
    stmt = site_scoped(select(Lane), principal, scope.lanes_of_site)
    return await _page(session, stmt.options(selectinload(Lane.waypoints)), Lane.id, cursor, limit, LaneOut)


@router.get("/lanes/{lane_id}", response_model=LaneOut)
async def get_lane(lane_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> LaneOut:
    await svc.get_visible(session, principal, Lane, lane_id, "lane", scope.lanes_of_site)
    return LaneOut.model_validate(await svc.get_lane(session, lane_id))


@router.post("/loggers", status_code=status.HTTP_201_CREATED, response_model=LoggerOut)
async def create_logger(body: LoggerIn, session: SessionDep, principal: Editor) -> LoggerOut:
    return LoggerOut.model_validate(await svc.create_logger(session, principal, body))


@router.get("/loggers", response_model=Page[LoggerOut])
async def list_loggers(
    session: SessionDep, _: Annotated[Principal, Depends(require_roles("coordinator", "qp"))],
    cursor: str | None = None, limit: Limit = DEFAULT_LIMIT,
) -> Page[LoggerOut]:
    return await _page(session, select(Logger), Logger.id, cursor, limit, LoggerOut)


@router.get("/loggers/{logger_id}", response_model=LoggerOut)
async def get_logger(
    logger_id: str, session: SessionDep,
    _: Annotated[Principal, Depends(require_roles("coordinator", "qp"))],
) -> LoggerOut:
    return LoggerOut.model_validate(await svc.get_or_404(session, Logger, logger_id, "logger"))
