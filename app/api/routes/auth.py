"""People signing in and out: a session cookie (HttpOnly, SameSite=Strict), who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.api.deps import (
    SESSION_COOKIE,
    CurrentPrincipal,
    SessionDep,
    SettingsDep,
    count_failure,
    now_of,
    require_same_origin,
    session_policy,
)
from app.api.metrics import PEOPLE_AUTH, refused
from app.core.errors import Problem, Unauthorized
from app.core.models import User
from app.core.security import Principal
from app.core.settings import Settings
from app.schemas.people import LoginIn, Me, UserOut
from app.services import auth as svc

router = APIRouter(tags=["sign-in"])


def _me(principal: Principal, user: User | None, settings: Settings) -> Me:
    if user is None:
        return Me(kind="api_key", actor=principal.actor, role=principal.role, site_id=principal.site_id)
    return Me(kind="session", actor=principal.actor, role=user.role, site_id=user.site_id,
              user=UserOut.model_validate(user), session_expires_at=principal.expires_at,
              idle_timeout_s=settings.session_idle_s)


@router.post("/auth/login", response_model=Me, responses={
    401: {"description": "Wrong email or password, or a disabled account"},
    429: {"description": "Locked after 5 failed attempts (Retry-After), or too many failures "
                         "from this address"}})
async def login(
    body: LoginIn, request: Request, response: Response, session: SessionDep, settings: SettingsDep,
) -> Me:
    """Sign a person in: sets the `coldchain_session` cookie (HttpOnly, SameSite=Strict; Secure
    with COLDCHAIN_SECURE_COOKIES=true). Five wrong passwords in a row lock the account for
    15 minutes: it then answers 429 with Retry-After, even to the right password."""
    if request.headers.get("origin") is not None:
        require_same_origin(request)  # no signing in from another site's page (login CSRF)
    result = await svc.login(session, body.email, body.password, now_of(request),
                             session_policy(settings))
    if isinstance(result, Problem):
        await session.commit()  # the failure is counted (and a lock audited) whatever is answered
        PEOPLE_AUTH.labels("login", refused(result)).inc()
        if isinstance(result, Unauthorized):
            count_failure(request)
        raise result
    PEOPLE_AUTH.labels("login", "ok").inc()
    user, row, token = result
    response.set_cookie(SESSION_COOKIE, token, max_age=settings.session_max_s, path="/",
                        httponly=True, samesite="strict", secure=settings.secure_cookies)
    return _me(svc.person(user, row), user, settings)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    request: Request, response: Response, session: SessionDep, principal: CurrentPrincipal,
    settings: SettingsDep,
) -> None:
    """End this session, server-side (the cookie is worthless from now on); nothing for a key."""
    await svc.logout(session, principal, now_of(request))
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=settings.secure_cookies)


@router.get("/auth/me", response_model=Me)
async def me(session: SessionDep, principal: CurrentPrincipal, settings: SettingsDep) -> Me:
    """Who is acting: the signed-in person (and when the session ends), or the API key's role."""
    user = await session.get(User, principal.user_id) if principal.user_id else None
    return _me(principal, user, settings)
