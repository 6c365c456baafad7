"""Audit trail shapes: one record of the hash chain, and the result of verifying the chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditRecordOut(BaseModel):
    id: int = Field(description="Position in the chain: 1, 2, 3, … (a missing id: a deleted record)")
    at: datetime
    actor: str = Field(description="Who: `key:<prefix>` of an API key, or `admin-bootstrap`")
    role: str | None
    action: str
    entity_type: str
    entity_id: str
    before: Any = None
    after: Any = None
    reason: str | None = Field(description="Why: the person's comment or reason, if any")
    prev_hash: str = Field(description="SHA-256 (hex) of the previous record; zeros for the first")
    hash: str = Field(description="SHA-256 (hex) over prev_hash and this record's canonical JSON")


class IdGap(BaseModel):
    first_missing_id: int
    last_missing_id: int


class AuditVerifyOut(BaseModel):
    ok: bool = Field(description="Intact: every link and hash holds, no id is missing, and the "
                                 "kept head (if given) is still in the chain with its hash")
    checked: int = Field(description="Records verified (up to the first broken one)")
    head_id: int | None = None
    head_hash: str | None = Field(default=None, description="Hash of the last record (anchor it)")
    broken_id: int | None = Field(default=None, description="The first record found wrong")
    problem: str | None = None
    gaps: list[IdGap] = Field(default_factory=list,
                              description="Runs of missing record ids (the first 100)")
    missing: int = Field(default=0, description="Record ids missing in all gaps")
    kept_head_ok: bool | None = Field(
        default=None, description="With head_id/head_hash: whether that record is unchanged")
