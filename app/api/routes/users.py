"""User accounts (admin only): create, list, read, change; passwords go in and never come out."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy import select

from app.api.deps import SessionDep, require_roles
from app.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, paginate
from app.core.models import User
from app.core.security import Principal
from app.schemas.people import Severity, UserIn, UserOut, UserPatch
from app.schemas.reference import Role
from app.services import people as svc
from app.services.reference import get_or_404

router = APIRouter(tags=["users"])
Admin = Annotated[Principal, Depends(require_roles())]


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserOut)
async def create_user(body: UserIn, session: SessionDep, principal: Admin) -> UserOut:
    """A person's account; the password (≥ 12 characters, not a common one) is stored as an
    Argon2id hash. A duplicate email, in any case, is a 409."""
    return UserOut.model_validate(await svc.create_user(session, principal, body))


@router.get("/users", response_model=Page[UserOut])
async def list_users(
    session: SessionDep, _: Admin, cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    role: Role | None = None, disabled: bool | None = None,
    notify_min_severity: Severity | None = None,
) -> Page[UserOut]:
    stmt = select(User)
    if role is not None:
        stmt = stmt.where(User.role == role)
    if disabled is not None:
        stmt = stmt.where(User.disabled.is_(disabled))
    if notify_min_severity is not None:
        stmt = stmt.where(User.notify_min_severity == notify_min_severity)
    rows, next_cursor = await paginate(session, stmt, [User.email], cursor=cursor, limit=limit,
                                       key_of=lambda r: [r[0].email])
    return Page(items=[UserOut.model_validate(r[0]) for r in rows], next_cursor=next_cursor)


@router.get("/users/{user_id}", response_model=UserOut)
async def get_user(user_id: uuid.UUID, session: SessionDep, _: Admin) -> UserOut:
    return UserOut.model_validate(await get_or_404(session, User, user_id, "user"))


@router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(
    user_id: uuid.UUID, body: UserPatch, session: SessionDep, principal: Admin
) -> UserOut:
    """Change role, site, name, e-mail preferences, password, or disable the account (which ends
    its sessions at once); audited with what changed (a new password only as `<changed>`)."""
    return UserOut.model_validate(await svc.update_user(session, principal, user_id, body))
