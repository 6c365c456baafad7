"""People signing in: password checks with lockout, server-side sessions (idle and absolute
expiry), and re-entering the password to sign a decision. The clock is always passed in."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit, passwords
from app.core.errors import Forbidden, Problem, RateLimited, Unauthorized
from app.core.models import User, UserSession
from app.core.security import Principal

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
# last_seen_at is written at most this often (not on every request); idle expiry is that exact.
SEEN_RESOLUTION = timedelta(seconds=30)
WRONG = "the email or password is wrong, or the account is disabled"


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: timedelta
    absolute: timedelta


def token_hash(token: str) -> bytes:
    # Tokens carry 256 random bits: a plain SHA-256 is not brute-forceable, and fast per request.
    return hashlib.sha256(token.encode()).digest()


def person(user: User, session_row: UserSession | None = None) -> Principal:
    """The principal a signed-in person acts as: their role and site, like a key of that role."""
    return Principal(actor=f"user:{user.email}", role=user.role, site_id=user.site_id,
                     user_id=user.id, session_id=session_row.id if session_row else None,
                     expires_at=session_row.expires_at if session_row else None)


def _locked(user: User, now: datetime) -> RateLimited | None:
    if user.locked_until is not None and user.locked_until > now:
        return RateLimited((user.locked_until - now).total_seconds(),
                           f"too many failed attempts: the account is locked until "
                           f"{user.locked_until.isoformat()}")
    return None


async def check_password(
    session: AsyncSession, user: User, password: str, now: datetime, *, purpose: str,
    wrong: Problem,
) -> Problem | None:
    """Check the password of a locked row (`SELECT … FOR UPDATE`): None when right, else the
    problem to answer (`wrong`, or 429 while locked). Failures — of logins and of signatures
    alike — are counted on the account; the fifth locks it for 15 minutes (audited) and ends its
    sessions. The caller commits before answering."""
    locked = _locked(user, now)
    if locked is not None:
        await passwords.burn_verification(password)
        return locked
    if not user.disabled and await passwords.verify_password(user.password_hash, password):
        if user.failed_logins or user.locked_until:
            user.failed_logins, user.locked_until = 0, None
        return None
    if user.disabled:
        return wrong
    user.failed_logins += 1
    if user.failed_logins >= MAX_FAILED_LOGINS:
        user.failed_logins, user.locked_until = 0, now + LOCKOUT
        await audit.record(session, person(user), action="lock", entity_type="user",
                           entity_id=user.id, after={"locked_until": user.locked_until},
                           reason=f"{MAX_FAILED_LOGINS} failed {purpose} attempts in a row")
        await end_sessions(session, user.id, now, "account locked")
    return wrong


async def end_sessions(session: AsyncSession, user_id: uuid.UUID, now: datetime, reason: str) -> int:
    """Revoke every open session of the user; how many were open."""
    result = await session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None),
               UserSession.expires_at > now)
        .values(revoked_at=now, revoked_reason=reason)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def signer(
    session: AsyncSession, principal: Principal, email: str | None, password: str, now: datetime,
) -> User | Problem:
    """The signed-in person signing, both signature components checked (21 CFR 11.200(a)(1)):
    the account of the session (and the email, when given, must be its), and the password
    re-entered now. A wrong one counts toward the lockout like a failed login."""
    if principal.user_id is None:
        return Forbidden("a decision on the record is an electronic signature: API keys cannot "
                         "sign; sign in as a person with the qp role")
    user = await session.scalar(select(User).where(User.id == principal.user_id).with_for_update())
    if user is None:
        return Unauthorized("the signed-in account no longer exists")
    wrong = Forbidden("the signature is not valid: wrong email or password")
    if email is not None and email.strip().lower() != user.email:
        await passwords.burn_verification(password)
        password = ""  # counted as a failed signature below, whatever the password
    return await check_password(session, user, password, now, purpose="signature", wrong=wrong) or user


async def user_for_update(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(
        select(User).where(User.email == email.strip().lower()).with_for_update())


async def login(
    session: AsyncSession, email: str, password: str, now: datetime, policy: SessionPolicy
) -> tuple[User, UserSession, str] | Problem:
    """A new session and its token (shown once, in the cookie), or the problem to answer."""
    user = await user_for_update(session, email)
    if user is None:
        await passwords.burn_verification(password)  # as slow as a known email
        return Unauthorized(WRONG)
    problem = await check_password(session, user, password, now, purpose="login",
                                   wrong=Unauthorized(WRONG))
    if problem is not None:
        return problem
    token = secrets.token_urlsafe(32)
    row = UserSession(token_hash=token_hash(token), user_id=user.id, created_at=now,
                      last_seen_at=now, expires_at=now + policy.absolute)
    session.add(row)
    await session.flush()
    await audit.record(session, person(user, row), action="login", entity_type="user",
                       entity_id=user.id, after={"session_id": row.id, "expires_at": row.expires_at})
    return user, row, token


async def resolve(
    session: AsyncSession, token: str, now: datetime, policy: SessionPolicy, *, active: bool = True
) -> Principal:
    """The principal of a session cookie, or 401 (unknown, revoked, expired, idle, disabled).
    `active`: the request is the person's own doing and extends the idle timeout."""
    found = (await session.execute(
        select(UserSession, User).join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == token_hash(token)))).first()
    if found is None:
        raise Unauthorized("the session is unknown: sign in again")
    row, user = found
    why = _why_ended(row, user, now, policy)
    if why is not None:
        raise Unauthorized(f"{why}: sign in again")
    if active and now - row.last_seen_at >= SEEN_RESOLUTION:
        row.last_seen_at = now
    return person(user, row)


def _why_ended(row: UserSession, user: User, now: datetime, policy: SessionPolicy) -> str | None:
    if user.disabled:
        return "the account is disabled"
    if row.revoked_at is not None:
        return f"the session was ended ({row.revoked_reason or 'revoked'})"
    if row.expires_at <= now:
        return "the session expired"
    if row.last_seen_at + policy.idle <= now:
        return "the session expired after inactivity"
    return None


async def why_ended(
    session: AsyncSession, session_id: uuid.UUID, now: datetime, policy: SessionPolicy
) -> str | None:
    """Why a session admitted earlier may no longer act, or None (the event stream asks)."""
    found = (await session.execute(
        select(UserSession, User).join(User, User.id == UserSession.user_id)
        .where(UserSession.id == session_id).execution_options(populate_existing=True))).first()
    if found is None:
        return "the session no longer exists"
    return _why_ended(found[0], found[1], now, policy)


async def logout(session: AsyncSession, principal: Principal, now: datetime) -> None:
    if principal.session_id is None:
        return
    row = await session.get(UserSession, principal.session_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at, row.revoked_reason = now, "signed out"
        await audit.record(session, principal, action="logout", entity_type="user",
                           entity_id=principal.user_id, after={"session_id": row.id})
