"""Audit chain verification: walk the hash chain in order; report broken links, missing ids and
whether a head kept elsewhere (a checkpoint) is still in the chain with its hash."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.audit import GENESIS, hashed_fields, record_digest
from app.core.models import AuditRecord

BATCH = 1000
MAX_GAPS = 100  # gaps listed in a result (all are counted in `missing`)
_HEAD = re.compile(r"^([1-9][0-9]{0,18}):([0-9a-fA-F]{64})$")


@dataclass(frozen=True, slots=True)
class KeptHead:
    """A record's id and hash kept outside the database (a checkpoint, a printout, a QP's file)."""

    id: int
    hash: bytes

    @classmethod
    def parse(cls, text: str) -> KeptHead:
        """`ID:HASH` as `coldchain audit verify` prints it (hash: 64 hex digits)."""
        match = _HEAD.match(text.strip())
        if match is None:
            raise ValueError("a kept head is ID:HASH, e.g. 42:<64 hex digits of its sha256>")
        return cls(int(match[1]), bytes.fromhex(match[2]))


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
    gaps: tuple[tuple[int, int], ...] = ()  # (first, last) missing id, the first MAX_GAPS
    missing: int = 0  # records missing in all gaps
    kept_head_ok: bool | None = None  # None: no kept head was given

    def describe(self) -> str:
        if self.ok:
            if not self.checked and self.head_id is None:
                return "audit chain OK: no records yet"
            kept = " (the kept head is in it unchanged)" if self.kept_head_ok else ""
            return (f"audit chain OK: {self.checked} records, head #{self.head_id} "
                    f"sha256 {self.head_hash}{kept}\n"
                    f"keep this head elsewhere and check it later: --head "
                    f"{self.head_id}:{self.head_hash}")
        where = f" at record #{self.broken_id}" if self.broken_id is not None else ""
        return (f"audit chain BROKEN{where}: {self.problem} "
                f"({self.checked} records before it verified)")


def kept_head_problem(kept: KeptHead, stored: bytes | None) -> str | None:
    """Why `kept` no longer holds, given the hash now stored under its id (None: it holds)."""
    if stored is None:
        return (f"the kept head #{kept.id} is no longer in the chain: records were removed "
                "(truncated or renumbered) since it was kept")
    if bytes(stored) != kept.hash:
        return (f"record #{kept.id} no longer has the kept hash {kept.hash.hex()}: the chain was "
                "rewritten up to it (even if it verifies on its own)")
    return None


class ChainWalker:
    """Pure, incremental check of rows fed in id order (from the start, or after a trusted head);
    stops at the first broken link, counts missing ids on the way."""

    def __init__(self, start: KeptHead | None = None) -> None:
        self.expected_prev = start.hash if start else GENESIS
        self.expected_id = start.id + 1 if start else 1
        self.previous_id: int | None = start.id if start else None
        self.checked = 0
        self.broken: tuple[int, str] | None = None
        self.gaps: list[tuple[int, int]] = []
        self.missing = 0

    def feed(self, row: ChainRow) -> bool:
        """Check one row; False (and `broken` set) at the first broken link."""
        if row.id > self.expected_id:
            self.missing += row.id - self.expected_id
            if len(self.gaps) < MAX_GAPS:
                self.gaps.append((self.expected_id, row.id - 1))
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
        self.expected_id = row.id + 1
        self.previous_id = row.id
        self.checked += 1
        return True

    def result(self, kept: KeptHead | None = None, kept_problem: str | None = None) -> VerifyResult:
        kept_ok = None if kept is None else kept_problem is None
        common = {"checked": self.checked, "gaps": tuple(self.gaps), "missing": self.missing,
                  "kept_head_ok": kept_ok}
        if self.broken is not None:
            return VerifyResult(ok=False, broken_id=self.broken[0], problem=self.broken[1], **common)
        head = self.expected_prev.hex() if self.previous_id is not None else None
        common |= {"head_id": self.previous_id, "head_hash": head}
        if kept is not None and kept_problem is not None:
            return VerifyResult(ok=False, broken_id=kept.id, problem=kept_problem, **common)
        if self.gaps:
            first, last = self.gaps[0]
            span = f"#{first}" if first == last else f"#{first}–#{last}"
            return VerifyResult(
                ok=False, broken_id=last + 1, problem=(
                    f"{self.missing} record(s) missing ({span} first): deleted, with the chain "
                    "re-linked over them (or, before migration 0008, lost to a rolled-back "
                    "transaction)"), **common)
        return VerifyResult(ok=True, **common)


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


async def verify_chain(
    session: AsyncSession, *, kept: KeptHead | None = None, since_kept: bool = False,
    batch: int = BATCH,
) -> VerifyResult:
    """Walk the chain in id order, `batch` rows per query (bounded memory).

    With `kept`, the record under its id must still carry its hash; with `since_kept` too, only
    the records after it are walked (the checkpoints' incremental check: it was verified before).
    """
    kept_problem = None
    if kept is not None:
        stored = await session.scalar(select(AuditRecord.hash).where(AuditRecord.id == kept.id))
        kept_problem = kept_head_problem(kept, stored)
    start = kept if since_kept and kept_problem is None else None
    walker = ChainWalker(start)
    last_id = start.id if start else 0
    while True:
        rows = (await session.execute(
            select(*_COLUMNS).where(AuditRecord.id > last_id).order_by(AuditRecord.id).limit(batch)
        )).all()
        for row in rows:
            if not walker.feed(ChainRow(*row)):
                return walker.result(kept, kept_problem)
        if len(rows) < batch:
            return walker.result(kept, kept_problem)
        last_id = rows[-1][0]
