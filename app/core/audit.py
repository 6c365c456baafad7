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

from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from app.core.models import AuditRecord, utcnow
from app.core.security import Principal

GENESIS = b"\x00" * 32
# One chain: a committing transaction takes this advisory lock as its last step, so records are
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


_PENDING = "coldchain_audit_pending"


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
) -> None:
    """Append one record in the caller's transaction (written at commit; never commits).

    The record is linked into the chain just before the transaction commits, under the chain's
    lock. Taking that lock last means a transaction holding it waits for no other lock, so audited
    transactions cannot deadlock on it however they lock rows before.
    """
    before = normalise(before) if before is not None else None
    after = normalise(after) if after is not None else None
    reason = normalise(reason) if reason is not None else None
    sync = session.sync_session
    if sync.get_transaction() is None:
        sync.begin()  # no I/O: ties the pending record to a transaction that can roll back
    sync.info.setdefault(_PENDING, []).append(
        {
            "at": utcnow(), "actor": principal.actor, "role": principal.role, "action": action,
            "entity_type": entity_type, "entity_id": str(entity_id), "before": before,
            "after": after, "reason": reason,
        }
    )


async def flush_pending(session: AsyncSession) -> None:
    """Write this transaction's pending records now (commit does it anyway)."""
    await session.run_sync(_write_pending)


def _write_pending(session: Session) -> None:
    pending: list[dict[str, Any]] = session.info.pop(_PENDING, [])
    if not pending:
        return
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    head = session.execute(
        select(AuditRecord.id, AuditRecord.hash).order_by(AuditRecord.id.desc()).limit(1)
    ).first()
    last_id, prev_hash = (head[0], bytes(head[1])) if head is not None else (0, GENESIS)
    for entry in pending:
        # Numbered here, under the lock, not by a sequence: a rolled-back transaction leaves no
        # hole, so a missing id is evidence of a deleted record (see audit_verify).
        last_id += 1
        digest = record_digest(prev_hash, hashed_fields(**entry))
        session.add(AuditRecord(id=last_id, **entry, prev_hash=prev_hash, hash=digest))
        prev_hash = digest
    session.flush()


@event.listens_for(Session, "before_commit")
def _link_before_commit(session: Session) -> None:
    _write_pending(session)


@event.listens_for(Session, "after_transaction_end")
def _drop_when_transaction_ends(session: Session, transaction: SessionTransaction) -> None:
    # After a commit the list was already written; after a rollback its records never happened.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
