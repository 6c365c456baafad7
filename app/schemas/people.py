"""People shapes: user accounts (the password goes in, never out) and the signed-in principal."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from app.schemas.common import Name, Out, StrictBody
from app.schemas.reference import Role, check_site_scope

Severity = Literal["info", "warning", "critical"]
# One '@', no spaces, a dot in the domain; at most 94 characters so that the audit trail's actor
# `user:<email>` fits its 100 characters. Stored lower-case: one account per address.
Email = Field(min_length=3, max_length=94, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Checked against the policy (app.core.passwords) by the service, which knows the email and name.
_PASSWORD = ("At least 12 characters, not a common or easily guessed password; stored only as an "
             "Argon2id hash, never shown")


class UserIn(StrictBody):
    email: str = Email
    name: Name
    role: Role
    site_id: uuid.UUID | None = None
    password: str = Field(min_length=1, max_length=1024, description=_PASSWORD)
    notify_email: bool = False
    notify_min_severity: Severity = "critical"

    @model_validator(mode="after")
    def _site_scope(self) -> UserIn:
        self.email = self.email.lower()
        check_site_scope(self.role, self.site_id, "user")
        return self


class UserPatch(StrictBody):
    """Only the fields sent change. A role other than `site` clears `site_id`; disabling a user,
    or setting a new password, ends their sessions."""

    name: Name | None = None
    role: Role | None = None
    site_id: uuid.UUID | None = None
    disabled: bool | None = None
    notify_email: bool | None = None
    notify_min_severity: Severity | None = None
    password: str | None = Field(default=None, min_length=1, max_length=1024, description=_PASSWORD)


class UserOut(Out):
    id: uuid.UUID
    email: str
    name: str
    role: str
    site_id: uuid.UUID | None
    disabled: bool
    notify_email: bool
    notify_min_severity: str
    locked_until: datetime | None
    password_changed_at: datetime
    created_at: datetime
    updated_at: datetime


class LoginIn(StrictBody):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    """Who is acting: a person signed in (`session`, with the user) or an API key."""

    kind: Literal["session", "api_key"]
    actor: str = Field(description="As the audit trail names it: user:<email> or key:<prefix>")
    role: str
    site_id: uuid.UUID | None
    user: UserOut | None = None
    session_expires_at: datetime | None = Field(
        default=None, description="The session's absolute end (12 h after sign-in)")
    idle_timeout_s: int | None = Field(
        default=None, description="The session ends after this long without activity")
