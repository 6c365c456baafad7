"""What a principal may see, as SQL: every site's rows, its own site's, or nothing (fails closed)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Select, false, or_, select

from app.core.models import Lane, Packaging, Product, Shipment, ShipmentEvent
from app.core.security import Principal

PerSite = Callable[[uuid.UUID], ColumnElement[bool]]


def involving_site(site_id: uuid.UUID) -> ColumnElement[bool]:
    """Shipments from or to `site_id`."""
    return or_(Shipment.origin_site_id == site_id, Shipment.destination_site_id == site_id)


def site_scoped(stmt: Select[Any], principal: Principal, per_site: PerSite) -> Select[Any]:
    """`stmt` restricted by `per_site(own site)` for a site key; no rows for a principal that
    neither sees every site nor has a site of its own (a site key without a site, an unknown role)."""
    if principal.sees_all_sites:
        return stmt
    if principal.own_site is None:
        return stmt.where(false())
    return stmt.where(per_site(principal.own_site))


def lanes_of_site(site: uuid.UUID) -> ColumnElement[bool]:
    """Lanes from or to the site, and lanes its shipments travel: the lane each was registered
    on and every lane a reroute put it on (its destination is that of the lane it is on)."""
    mine = select(Shipment.id).where(involving_site(site))
    return or_(Lane.origin_site_id == site, Lane.destination_site_id == site,
               Lane.id.in_(select(Shipment.planned_lane_id).where(involving_site(site))),
               Lane.id.in_(select(ShipmentEvent.lane_id).where(
                   ShipmentEvent.shipment_id.in_(mine), ShipmentEvent.lane_id.is_not(None))))


def products_of_site(site: uuid.UUID) -> ColumnElement[bool]:
    """Product profiles of the site's shipments."""
    return Product.id.in_(select(Shipment.product_id).where(involving_site(site)))


def packaging_of_site(site: uuid.UUID) -> ColumnElement[bool]:
    """Packaging profiles of the site's shipments."""
    return Packaging.id.in_(select(Shipment.packaging_id).where(involving_site(site)))
