"""Audited transactions never deadlock on the audit chain, whatever rows they lock first."""

from __future__ import annotations

import asyncio

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core import audit
from app.core.audit_verify import verify_chain
from app.core.db import make_sessionmaker
from app.core.models import AuditRecord
from app.core.security import Principal
from tests.waits import lock_waiters, until

ALICE = Principal(actor="key:alice", role="coordinator")


async def test_audit_then_row_lock_does_not_deadlock_with_row_lock_then_audit(
    db: AsyncSession, engine: AsyncEngine
) -> None:
    await db.execute(text("INSERT INTO sites (id, name, country) VALUES "
                          "('00000000-0000-0000-0000-0000000000b1', 'B', 'NL')"))
    await db.commit()
    factory = make_sessionmaker(engine)
    first_audited = asyncio.Event()
    second_locked = asyncio.Event()

    async def audit_then_lock() -> None:
        async with factory() as session:
            await audit.record(session, ALICE, action="a", entity_type="x", entity_id="1")
            first_audited.set()
            await second_locked.wait()
            # Waits for the other transaction's row lock: it must be able to commit meanwhile.
            await session.execute(text("UPDATE sites SET name = 'B1' WHERE country = 'NL'"))
            await session.commit()

    async def lock_then_audit() -> None:
        async with factory() as session:
            await first_audited.wait()
            await session.execute(text("UPDATE sites SET name = 'B2' WHERE country = 'NL'"))
            second_locked.set()
            await until(lambda: lock_waiters(engine), "the other transaction blocked on our row")
            await audit.record(session, ALICE, action="b", entity_type="x", entity_id="2")
            await session.commit()

    await asyncio.wait_for(asyncio.gather(audit_then_lock(), lock_then_audit()), 20)
    async with factory() as session:
        actions = (await session.scalars(select(AuditRecord.action).order_by(AuditRecord.id))).all()
        assert actions == ["b", "a"]
        assert (await verify_chain(session)).ok


async def test_rolled_back_transaction_leaves_no_audit_record(
    db: AsyncSession, engine: AsyncEngine
) -> None:
    async with make_sessionmaker(engine)() as session:
        await audit.record(session, ALICE, action="gone", entity_type="x", entity_id="1")
        await session.rollback()
        await audit.record(session, ALICE, action="kept", entity_type="x", entity_id="2")
        await session.commit()
    actions = (await db.scalars(select(AuditRecord.action))).all()
    assert actions == ["kept"]
