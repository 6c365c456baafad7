"""Request dependencies: one session (one transaction) per request, the acting principal, scoping."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.metrics import AUTH_FAILURES
from app.core.errors import Forbidden, InvalidField, RateLimited, Unauthorized
from app.core.models import ApiKey, utcnow
from app.core.scope import involving_site, site_scoped
from app.core.security import Principal, RateLimiter, hash_key, key_prefix, keys_equal
from app.core.settings import Settings
from app.services import auth

log = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")
_LAST_USED_RESOLUTION = timedelta(minutes=1)
SESSION_COOKIE = "coldchain_session"
# Sent by the page on requests it makes by itself (refreshes after a live event): they do not
# count as the person's activity, so an unattended page still times out.
BACKGROUND_HEADER = "x-coldchain-background"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_session_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False,
                               description="A person's session: POST /api/v1/auth/login sets it")


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
    token: Annotated[str | None, Depends(_session_cookie)],
) -> Principal:
    """An API key (`Authorization: Bearer`) if one is sent, else a person's session cookie."""
    key = credentials.credentials if credentials is not None else None
    if not key and not token:  # nothing presented: not counted as a failed authentication
        raise Unauthorized("an API key or a session is required: Authorization: Bearer <key>, "
                           "or sign in at POST /api/v1/auth/login")
    try:
        if key:
            principal = await _principal_from_bearer(session, settings, key)
        else:
            background = request.headers.get(BACKGROUND_HEADER, "").lower() == "true"
            principal = await auth.resolve(session, token or "", now_of(request),
                                           session_policy(settings), active=not background)
    except Unauthorized:
        count_failure(request)
        raise
    if principal.session_id is not None:
        require_same_origin(request)
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        bucket = principal.key_id or principal.session_id or principal.actor
        wait = limiter.acquire(str(bucket), request.app.state.monotonic())
        if wait > 0:
            raise RateLimited(wait)
    request.state.principal = principal
    return principal


async def _principal_from_bearer(session: AsyncSession, settings: Settings, key: str) -> Principal:
    if settings.admin_api_key and keys_equal(key, settings.admin_api_key):
        return Principal(actor="admin-bootstrap", role="admin")
    return await _principal_from_key(session, key)


def now_of(request: Request) -> datetime:
    """The app's wall clock (tests move it: session expiry and lockout without sleeping)."""
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


def session_policy(settings: Settings) -> auth.SessionPolicy:
    return auth.SessionPolicy(idle=timedelta(seconds=settings.session_idle_s),
                              absolute=timedelta(seconds=settings.session_max_s))


def require_same_origin(request: Request) -> None:
    """CSRF: a request authenticated by the session cookie that changes anything must come from
    this server's own page (`Origin` equal to the request's own scheme, host and port)."""
    if request.method in _SAFE_METHODS:
        return
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin is None or origin.rstrip("/") != own:
        raise Forbidden("a request signed in by the session cookie needs the Origin of this "
                        f"server ({own}); got {origin or 'none'}")


def count_failure(request: Request) -> None:
    """Count a failed authentication against the client's address; 429 once it is over budget.

    Only failures are counted and only failures are refused: a valid key presented from the same
    address (a shared NAT, the same client after a typo) is served as ever.
    """
    failures: RateLimiter | None = getattr(request.app.state, "auth_failures", None)
    address = request.client.host if request.client else "unknown"
    wait = failures.acquire(address, request.app.state.monotonic()) if failures else 0.0
    if wait > 0:
        AUTH_FAILURES.labels("throttled").inc()
        log.warning("failed authentications from %s over the limit: answering 429", address)
        raise RateLimited(wait, "too many failed authentications from this address")
    AUTH_FAILURES.labels("rejected").inc()


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
    return Principal(actor=f"key:{row.prefix}", role=row.role, site_id=row.site_id, key_id=row.id,
                     expires_at=row.expires_at)


async def why_no_longer_valid(
    session: AsyncSession, principal: Principal, *, now: datetime | None = None,
    policy: auth.SessionPolicy | None = None,
) -> str | None:
    """Why a principal admitted earlier may no longer act (its key revoked, expired or gone; its
    session ended, expired or idle, its account disabled), or None while it still may;
    long-lived requests (the event stream) ask again."""
    now = now or utcnow()
    if principal.session_id is not None:
        if policy is None:
            raise ValueError("a session's validity depends on the session policy")
        return await auth.why_ended(session, principal.session_id, now, policy)
    if principal.key_id is None:
        return None  # the bootstrap admin key: valid for the life of the process
    row = await session.get(ApiKey, principal.key_id, populate_existing=True)
    if row is None:
        return "the API key no longer exists"
    if row.revoked_at is not None:
        return "the API key was revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "the API key expired"
    return None


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: str) -> Callable[..., Any]:
    """A dependency admitting only the given roles (admin is always admitted)."""
    return _admitting(frozenset({"admin", *roles}), "may not do this")


def require_decision_roles(*roles: str) -> Callable[..., Any]:
    """A dependency for decisions on the GxP record (release, acknowledgement, resolution,
    corrections): only the given business roles. The admin role administers the system and
    never decides on the record (segregation of duties, EU GMP Annex 11 / 21 CFR Part 11)."""
    return _admitting(frozenset(roles), "may not do this: a decision on the record is made by "
                      f"a {' or '.join(sorted(roles))} key")


def _admitting(allowed: frozenset[str], why: str) -> Callable[..., Any]:
    async def _check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            raise Forbidden(f"role '{principal.role}' {why}")
        return principal

    return _check


def shipment_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """Restrict a statement over shipments to those the principal may see (fails closed)."""
    return site_scoped(stmt, principal, involving_site)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A validated `from`/`to` query window in UTC (either end may be open)."""

    start: datetime | None
    end: datetime | None


def _utc(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidField(name, "must carry a UTC offset (RFC 3339)")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 has no UTC time
        raise InvalidField(name, "is out of the representable range once converted to UTC") from None


def check_time_range(
    start: datetime | None, end: datetime | None, *, max_days: int
) -> TimeRange:
    """UTC-normalised window; `to` before `from`, or wider than `max_days`, is a 422."""
    start, end = _utc("from", start), _utc("to", end)
    if start is not None and end is not None:
        if end < start:
            raise InvalidField("to", "must not be before from")
        if max_days and end - start > timedelta(days=max_days):
            raise InvalidField("to", f"a time range may span at most {max_days} days")
    return TimeRange(start, end)


async def time_range(
    settings: SettingsDep,
    start: Annotated[AwareDatetime | None, Query(alias="from", description="RFC 3339, inclusive")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to", description="RFC 3339, exclusive")] = None,
) -> TimeRange:
    """Dependency for endpoints filtered by time: `?from=…&to=…` (RFC 3339 with offset)."""
    return check_time_range(start, end, max_days=settings.max_time_range_days)


TimeRangeDep = Annotated[TimeRange, Depends(time_range)]
