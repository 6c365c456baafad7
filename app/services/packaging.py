"""Packaging requalification: refusing a shipment packed after it, and what runs out soon."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import InvalidField
from app.core.models import Packaging, Shipment
from app.core.scope import involving_site, packaging_of_site, site_scoped
from app.core.security import Principal

# Not yet received: the shipper is still in use.
ACTIVE_STATUSES = ("packed", "in_transit", "customs_hold", "delivered")
DUE_WITHIN_DAYS = 30


def require_qualified(packaging: Packaging, packed_at: datetime) -> None:
    """A shipment may be packed in this shipper type only through its requalification day (UTC)."""
    until = packaging.requalified_until
    packed_on = packed_at.astimezone(UTC).date()
    if until is not None and packed_on > until:
        raise InvalidField(
            "packaging_id",
            f"packaging '{packaging.name}' ({packaging.id}) is requalified only until "
            f"{until.isoformat()}; the shipment is packed on {packed_on.isoformat()}")


async def requalification_due(
    session: AsyncSession, principal: Principal, *, today: date, within_days: int
) -> list[dict[str, Any]]:
    """Packaging whose requalification ends within `within_days` of `today` (or has ended), the
    soonest first, with the number of active shipments packed in it; a site key sees the
    packaging of its own shipments only."""
    active = (
        select(func.count(Shipment.id))
        .where(Shipment.packaging_id == Packaging.id, Shipment.status.in_(ACTIVE_STATUSES))
    )
    if not principal.sees_all_sites and principal.own_site is not None:
        active = active.where(involving_site(principal.own_site))
    stmt = site_scoped(
        select(Packaging, active.scalar_subquery().label("active"))
        .where(Packaging.requalified_until.is_not(None),
               Packaging.requalified_until <= today + timedelta(days=within_days))
        .order_by(Packaging.requalified_until, Packaging.id),
        principal, packaging_of_site)
    return [
        {"id": p.id, "name": p.name, "requalified_until": p.requalified_until,
         "days_left": (p.requalified_until - today).days, "active_shipments": n}
        for p, n in (await session.execute(stmt)).all()
    ]
