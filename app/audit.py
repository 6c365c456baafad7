"""Append-only, hash-chained audit trail: every change by a person or key, with who/what/when/why."""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuditRecord, utcnow
from app.security import Principal

GENESIS = b"\x00" * 32
# One chain: transactions that append take this advisory lock until they commit, so records are
# appended (and numbered) strictly one after the other.
_CHAIN_LOCK = 0x636F6C64  # "cold"


def normalise(value: Any) -> Any:
    """A JSON value that survives a JSONB round trip unchanged, so its hash can be recomputed.

    JSONB stores numbers as `numeric`: `5.0` may come back as `5` and `1e20` as an integer, so
    integral floats are stored as integers; NaN/Infinity (not JSON) become strings; NUL (refused by
    JSONB) becomes U+FFFD; datetimes become ISO 8601, UUIDs and decimals strings, bytes hex.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        return int(value) if value.is_integer() else value
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        return {normalise(str(k)): normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [normalise(v) for v in value]
        return sorted(items, key=canonical) if isinstance(value, set | frozenset) else items
    return normalise(str(value))


def canonical(value: Any) -> str:
    """Sorted keys, no whitespace, non-ASCII escaped: the exact bytes that are hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def record_digest(prev_hash: bytes, fields: dict[str, Any]) -> bytes:
    """SHA-256 over the predecessor's hash and this record's canonical JSON."""
    return hashlib.sha256(prev_hash + canonical(fields).encode()).digest()


def hashed_fields(
    *, at: datetime, actor: str, role: str | None, action: str, entity_type: str, entity_id: str,
    before: Any, after: Any, reason: str | None,
) -> dict[str, Any]:
    """What a record's hash covers: everything but its id and the hashes themselves."""
    if at.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
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
    """Append one record in the caller's transaction (flushes, never commits)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    prev = await session.scalar(
        select(AuditRecord.hash).order_by(AuditRecord.id.desc()).limit(1)
    )
    before = normalise(before) if before is not None else None
    after = normalise(after) if after is not None else None
    reason = normalise(reason) if reason is not None else None
    at = utcnow()
    fields = hashed_fields(
        at=at, actor=principal.actor, role=principal.role, action=action,
        entity_type=entity_type, entity_id=str(entity_id), before=before, after=after,
        reason=reason,
    )
    prev_hash = bytes(prev) if prev is not None else GENESIS
    row = AuditRecord(
        at=at, actor=principal.actor, role=principal.role, action=action,
        entity_type=entity_type, entity_id=str(entity_id), before=before, after=after,
        reason=reason, prev_hash=prev_hash, hash=record_digest(prev_hash, fields),
    )
    session.add(row)
    await session.flush()
    return row
