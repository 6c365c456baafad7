"""Append-only, hash-chained audit trail: every change by a person or key, with who/what/when/why."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuditRecord, utcnow
from app.security import Principal

GENESIS = b"\x00" * 32
# One chain: transactions that append take this advisory lock until they commit.
_CHAIN_LOCK = 0x636F6C64  # "cold"


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def record_digest(prev_hash: bytes, fields: dict[str, Any]) -> bytes:
    """SHA-256 over the predecessor's hash and this record's canonical JSON."""
    return hashlib.sha256(prev_hash + canonical(fields).encode()).digest()


def hashed_fields(
    *, at: datetime, actor: str, role: str | None, action: str, entity_type: str, entity_id: str,
    before: Any, after: Any, reason: str | None,
) -> dict[str, Any]:
    return {
        "at": at.isoformat(),
        "actor": actor,
        "role": role,
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "before": before,
        "after": after,
        "reason": reason,
    }


async def record(
    session: AsyncSession,
    principal: Principal,
    *,
    action: str,
    entity_type: str,
    entity_id: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditRecord:
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    prev = await session.scalar(
        select(AuditRecord.hash).order_by(AuditRecord.id.desc()).limit(1)
    )
    # Round-trip through JSON so what is hashed is exactly what JSONB stores and returns.
    before = json.loads(canonical(before)) if before is not None else None
    after = json.loads(canonical(after)) if after is not None else None
    at = utcnow()
    fields = hashed_fields(
        at=at, actor=principal.actor, role=principal.role, action=action,
        entity_type=entity_type, entity_id=str(entity_id), before=before, after=after,
        reason=reason,
    )
    prev_hash = prev or GENESIS
    row = AuditRecord(
        at=at, actor=principal.actor, role=principal.role, action=action,
        entity_type=entity_type, entity_id=str(entity_id), before=before, after=after,
        reason=reason, prev_hash=prev_hash, hash=record_digest(prev_hash, fields),
    )
    session.add(row)
    await session.flush()
    return row
