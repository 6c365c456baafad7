"""The mail notification log (admins and coordinators): what was mailed to whom, and what failed."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from alerts.mail.log import mail_dicts
from app.api.deps import SessionDep, require_roles
from app.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, paginate
from app.core.errors import NotFound
from app.core.models import MailDelivery, utcnow
from app.core.security import Principal
from app.schemas.mail import MailOut, MailState

router = APIRouter(tags=["notifications"])
Reader = Annotated[Principal, Depends(require_roles("coordinator"))]


@router.get("/notifications/mail", response_model=Page[MailOut])
async def list_mail(
    session: SessionDep, _: Reader, state: MailState | None = None,
    user_id: uuid.UUID | None = None, alert_id: uuid.UUID | None = None,
    cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[MailOut]:
    """Alert mails, oldest first, each with its SMTP attempts (reply codes, times); `state=failed`
    lists what never arrived (a 5xx refusal, or a day of temporary failures)."""
    stmt = select(MailDelivery)
    for column, value in ((MailDelivery.state, state), (MailDelivery.user_id, user_id),
                          (MailDelivery.alert_id, alert_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    rows, next_cursor = await paginate(
        session, stmt, [MailDelivery.created_at, MailDelivery.id], cursor=cursor, limit=limit,
        key_of=lambda r: [r[0].created_at, r[0].id],
    )
    items = await mail_dicts(session, [r[0] for r in rows], utcnow())
    return Page(items=[MailOut(**item) for item in items], next_cursor=next_cursor)


@router.get("/notifications/mail/{mail_id}", response_model=MailOut)
async def get_mail(mail_id: uuid.UUID, session: SessionDep, _: Reader) -> MailOut:
    mail = await session.get(MailDelivery, mail_id)
    if mail is None:
        raise NotFound("mail", mail_id)
    (item,) = await mail_dicts(session, [mail], utcnow())
    return MailOut(**item)
