"""Audit chain test helpers: appending as the service, verifying, and forging as the owner."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import audit
from app.core.audit_verify import KeptHead, VerifyResult, verify_chain
from app.core.db import make_sessionmaker
from app.core.security import Principal

ALICE = Principal(actor="key:0a1b2c3d", role="coordinator")


async def append(engine: AsyncEngine, n: int, *, start: int = 0) -> None:
    async with make_sessionmaker(engine)() as session:
        for i in range(start, start + n):
            await audit.record(
                session, ALICE, action="update", entity_type="shipment", entity_id=f"S-{i}",
                before={"status": "packed", "i": i}, after={"status": "in_transit", "i": i},
                reason=f"change {i}",
            )
        await session.commit()


async def verify(engine: AsyncEngine, kept: KeptHead | None = None) -> VerifyResult:
    async with make_sessionmaker(engine)() as session:
        return await verify_chain(session, kept=kept)


async def owner_tamper(owner: AsyncEngine, sql: str, **params: object) -> None:
    """What the database owner can do behind the application's back: disable the trigger, edit."""
    async with owner.begin() as conn:
        await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        await conn.execute(text(sql), params)
        await conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))


async def rehash(owner: AsyncEngine, *, delete: tuple[int, ...] = (), rewrite: int | None = None,
                  renumber: bool = False) -> None:
    """A forger with the owner's rights: delete records, rewrite one, re-link and re-hash the rest
    so that the chain verifies on its own (optionally renumbering away the holes too)."""
    async with owner.begin() as conn:
        await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        rows = (await conn.execute(text("SELECT * FROM audit_log ORDER BY id"))).mappings().all()
        await conn.execute(text("DELETE FROM audit_log"))
        prev, number = audit.GENESIS, 0
        for row in rows:
            if row["id"] in delete:
                continue
            number += 1
            after = {"status": "rejected"} if row["id"] == rewrite else row["after"]
            fields = audit.hashed_fields(
                at=row["at"], actor=row["actor"], role=row["role"], action=row["action"],
                entity_type=row["entity_type"], entity_id=row["entity_id"], before=row["before"],
                after=after, reason=row["reason"])
            digest = audit.record_digest(prev, fields)
            await conn.execute(text(
                "INSERT INTO audit_log (id, at, actor, role, action, entity_type, entity_id, before,"
                " after, reason, prev_hash, hash) VALUES (:id, :at, :actor, :role, :action, "
                ":entity_type, :entity_id, CAST(:before AS jsonb), CAST(:after AS jsonb), :reason,"
                " :prev, :hash)"),
                {**fields, "id": number if renumber else row["id"], "at": row["at"],
                 "before": json.dumps(row["before"]), "after": json.dumps(after),
                 "prev": prev, "hash": digest})
            prev = digest
        await conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))


async def head(engine: AsyncEngine) -> KeptHead:
    result = await verify(engine)
    assert result.ok and result.head_id is not None and result.head_hash is not None
    return KeptHead(result.head_id, bytes.fromhex(result.head_hash))


async def truncate_audit(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text("TRUNCATE audit_log RESTART IDENTITY"))
