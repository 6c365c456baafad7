"""`coldchain audit verify`: walk the audit hash chain in order and report the first broken link."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import GENESIS, hashed_fields, record_digest
from app.models import AuditRecord
from app.settings import Settings

BATCH = 1000


@dataclass(frozen=True, slots=True)
class ChainRow:
    """One stored audit record, as read back from the database."""

    id: int
    at: datetime
    actor: str
    role: str | None
    action: str
    entity_type: str
    entity_id: str
    before: Any
    after: Any
    reason: str | None
    prev_hash: bytes
    hash: bytes


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    head_id: int | None = None
    head_hash: str | None = None
    broken_id: int | None = None
    problem: str | None = None

    def describe(self) -> str:
        if self.ok:
            if not self.checked:
                return "audit chain OK: no records yet"
            return (f"audit chain OK: {self.checked} records, head #{self.head_id} "
                    f"sha256 {self.head_hash}")
        return (f"audit chain BROKEN at record #{self.broken_id}: {self.problem} "
                f"({self.checked} records before it verified)")


class ChainWalker:
    """Pure, incremental check of rows fed in id order; stops at the first broken link."""

    def __init__(self) -> None:
        self.expected_prev = GENESIS
        self.previous_id: int | None = None
        self.checked = 0
        self.broken: tuple[int, str] | None = None

    def feed(self, row: ChainRow) -> bool:
        """Check one row; False (and `broken` set) at the first broken link."""
        prev_hash, stored = bytes(row.prev_hash), bytes(row.hash)
        if prev_hash != self.expected_prev:
            after = f"record #{self.previous_id}" if self.previous_id is not None else "the start"
            self.broken = (row.id, f"does not link to {after}: its prev_hash differs from that "
                                   "record's hash (a record was removed, inserted or rewritten)")
            return False
        fields = hashed_fields(
            at=row.at, actor=row.actor, role=row.role, action=row.action,
            entity_type=row.entity_type, entity_id=row.entity_id, before=row.before,
            after=row.after, reason=row.reason,
        )
        if record_digest(prev_hash, fields) != stored:
            self.broken = (row.id, "its content does not match its hash (the record was altered)")
            return False
        self.expected_prev = stored
        self.previous_id = row.id
        self.checked += 1
        return True

    def result(self) -> VerifyResult:
        if self.broken is not None:
            return VerifyResult(ok=False, checked=self.checked, broken_id=self.broken[0],
                                problem=self.broken[1])
        head = self.expected_prev.hex() if self.checked else None
        return VerifyResult(ok=True, checked=self.checked, head_id=self.previous_id, head_hash=head)


def verify_rows(rows: Iterable[ChainRow]) -> VerifyResult:
    walker = ChainWalker()
    for row in rows:
        if not walker.feed(row):
            break
    return walker.result()


_COLUMNS = (
    AuditRecord.id, AuditRecord.at, AuditRecord.actor, AuditRecord.role, AuditRecord.action,
    AuditRecord.entity_type, AuditRecord.entity_id, AuditRecord.before, AuditRecord.after,
    AuditRecord.reason, AuditRecord.prev_hash, AuditRecord.hash,
)


async def verify_chain(session: AsyncSession, *, batch: int = BATCH) -> VerifyResult:
    """Walk the whole chain in id order, `batch` rows per query (bounded memory)."""
    walker = ChainWalker()
    last_id = 0
    while True:
        rows = (await session.execute(
            select(*_COLUMNS).where(AuditRecord.id > last_id).order_by(AuditRecord.id).limit(batch)
        )).all()
        for row in rows:
            if not walker.feed(ChainRow(*row)):
                return walker.result()
        if len(rows) < batch:
            return walker.result()
        last_id = rows[-1][0]


async def _verify_url(database_url: str) -> VerifyResult:
    from app.db import make_engine, make_sessionmaker

    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            return await verify_chain(session)
    finally:
        await engine.dispose()


def main(settings: Settings) -> int:
    """Exit code 0 when the chain is intact, 1 at a broken link (printed with its record id)."""
    from app.runtime import resolved

    with resolved(settings.model_copy(update={"mqtt_url": settings.mqtt_url or "mqtt://unused"})) as live:
        result = asyncio.run(_verify_url(live.database_url or ""))
    print(result.describe())
    return 0 if result.ok else 1
