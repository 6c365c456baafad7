"""User accounts: created, changed and disabled by an admin, every change audited (passwords never)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import audit, passwords
from app.core.errors import Conflict, Forbidden, InvalidField
from app.core.models import Site, User, utcnow
from app.core.security import Principal
from app.schemas.people import UserIn, UserPatch
from app.schemas.reference import check_site_scope
from app.services import auth
from app.services.reference import get_or_404, require_exists, snapshot

# What the audit trail records of a user: everything but the password hash.
_SECRET = frozenset({"password_hash"})
PASSWORD_CHANGED = "<changed>"  # the audit trail's mark for a new password (never the value)


def audited(user: User) -> dict[str, Any]:
    return {k: v for k, v in snapshot(user).items() if k not in _SECRET}


def _check_password(password: str, email: str, name: str) -> None:
    why = passwords.weakness(password, (email, name))
    if why is not None:
        raise InvalidField("password", why)


async def create_user(session: AsyncSession, principal: Principal, data: UserIn) -> User:
    _check_password(data.password, data.email, data.name)
    if data.site_id is not None:
        await require_exists(session, Site, data.site_id, "site_id")
    user = User(**data.model_dump(exclude={"password"}),
                password_hash=await passwords.hash_password(data.password))
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError:
        raise Conflict(f"a user with email {data.email} already exists", field="email") from None
    await audit.record(session, principal, action="create", entity_type="user", entity_id=user.id,
                       after=audited(user))
    return user


async def update_user(
    session: AsyncSession, principal: Principal, user_id: uuid.UUID, data: UserPatch
) -> User:
    user = await get_or_404(session, User, user_id, "user")
    sent = data.model_fields_set
    for field in ("role", "disabled", "name", "notify_email", "notify_min_severity"):
        if field in sent and getattr(data, field) is None:
            raise InvalidField(field, "may not be null")
    if user_id == principal.user_id and (data.disabled or data.role not in (None, user.role)):
        raise Forbidden("an admin may not disable or demote their own account")
    before = audited(user)
    role = data.role or user.role
    site_id = data.site_id if "site_id" in sent else (user.site_id if role == "site" else None)
    check_site_scope(role, site_id, "user")
    if site_id is not None and site_id != user.site_id:
        await require_exists(session, Site, site_id, "site_id")
    user.role, user.site_id = role, site_id
    for field in ("name", "disabled", "notify_email", "notify_min_severity"):
        if field in sent:
            setattr(user, field, getattr(data, field))
    now = utcnow()
    if data.password is not None:
        _check_password(data.password, user.email, user.name)
        user.password_hash = await passwords.hash_password(data.password)
        user.password_changed_at = now
        user.failed_logins, user.locked_until = 0, None
    if data.disabled is False:
        user.failed_logins, user.locked_until = 0, None  # re-enabling also lifts a lockout
    await session.flush()
    after = audited(user)
    changed_before = {k: v for k, v in before.items() if after[k] != v and k != "updated_at"}
    changed_after = {k: after[k] for k in changed_before}
    if data.password is not None:
        changed_before["password"], changed_after["password"] = None, PASSWORD_CHANGED
    if changed_after:
        await audit.record(session, principal, action="update", entity_type="user",
                           entity_id=user.id, before=changed_before, after=changed_after)
    if data.disabled or data.password is not None or role != before["role"] or site_id != before["site_id"]:
        reason = "user disabled" if data.disabled else "account changed"
        await auth.end_sessions(session, user.id, now, reason)
    return user
