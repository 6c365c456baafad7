"""A head kept outside the database exposes what re-hashing hides: truncation and wholesale rewrites;
missing ids expose deletions over which the chain was re-linked."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.audit_verify import KeptHead
from app.core.settings import Settings
from tests.db import audit_support as chain

ROOT = Path(__file__).resolve().parents[2]


async def test_truncation_is_detected_with_a_kept_head(
    db: AsyncSession, engine: AsyncEngine, owner_engine: AsyncEngine
) -> None:
    await chain.append(engine, 5)
    kept = await chain.head(engine)
    # The owner removes the last two records: what is left is a perfect chain on its own.
    await chain.owner_tamper(owner_engine, "DELETE FROM audit_log WHERE id > 3")
    alone = await chain.verify(engine)
    assert (alone.ok, alone.checked, alone.head_id) == (True, 3, 3)
    checked = await chain.verify(engine, kept)
    assert (checked.ok, checked.kept_head_ok, checked.broken_id) == (False, False, 5)
    assert checked.problem == (
        "the kept head #5 is no longer in the chain: records were removed (truncated or "
        "renumbered) since it was kept"
    )
    # …and appending new records under the old numbers does not bring it back.
    await chain.append(engine, 2, start=100)
    again = await chain.verify(engine, kept)
    assert (again.ok, again.head_id, again.kept_head_ok) == (False, 5, False)
    assert again.problem is not None and "no longer has the kept hash" in again.problem


async def test_a_full_rehash_is_detected_with_a_kept_head(
    db: AsyncSession, engine: AsyncEngine, owner_engine: AsyncEngine
) -> None:
    await chain.append(engine, 6)
    kept = await chain.head(engine)
    earlier = KeptHead(3, await _hash_of(engine, 3))
    await chain.rehash(owner_engine, rewrite=2)  # record 2 rewritten, every later hash recomputed
    alone = await chain.verify(engine)
    assert alone.ok and alone.checked == 6  # the forgery verifies on its own…
    for head in (kept, earlier):  # …but not against any head kept after the rewritten record
        result = await chain.verify(engine, head)
        assert (result.ok, result.kept_head_ok, result.broken_id) == (False, False, head.id)
        assert result.problem == (
            f"record #{head.id} no longer has the kept hash {head.hash.hex()}: the chain was "
            "rewritten up to it (even if it verifies on its own)"
        )
    untouched = KeptHead(1, await _hash_of(engine, 1))
    assert (await chain.verify(engine, untouched)).ok  # a head before the forgery still holds


async def test_a_deleted_record_shows_as_a_gap_even_with_the_chain_relinked(
    db: AsyncSession, engine: AsyncEngine, owner_engine: AsyncEngine
) -> None:
    await chain.append(engine, 6)
    await chain.rehash(owner_engine, delete=(3, 4))
    result = await chain.verify(engine)
    assert (result.ok, result.broken_id, result.gaps, result.missing) == (False, 5, ((3, 4),), 2)
    assert result.checked == 4 and result.kept_head_ok is None
    # A forger who also renumbers leaves no gap: only a kept head tells.
    await chain.rehash(owner_engine, renumber=True)
    assert (await chain.verify(engine)).ok


async def test_cli_checks_a_kept_head(
    db: AsyncSession, engine: AsyncEngine, owner_engine: AsyncEngine, settings: Settings
) -> None:
    await chain.append(engine, 4)
    kept = await chain.head(engine)
    env = {**os.environ, "DATABASE_URL": settings.database_url or ""}
    base = [sys.executable, "-m", "app.cli", "audit", "verify"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=60)

    ok = await asyncio.to_thread(run, "--head", f"{kept.id}:{kept.hash.hex()}")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("audit chain OK: 4 records, head #4") and "unchanged" in ok.stdout
    await chain.rehash(owner_engine, rewrite=3)
    broken = await asyncio.to_thread(run, "--head", f"{kept.id}:{kept.hash.hex()}")
    assert broken.returncode == 1
    assert broken.stdout.startswith("audit chain BROKEN at record #4: record #4 no longer has")
    assert (await asyncio.to_thread(run)).returncode == 0  # without the head it looks fine
    malformed = await asyncio.to_thread(run, "--head", "4:abc")
    assert malformed.returncode == 2 and "ID:HASH" in malformed.stderr


async def _hash_of(engine: AsyncEngine, record_id: int) -> bytes:
    async with engine.connect() as conn:
        value = (await conn.execute(text("SELECT hash FROM audit_log WHERE id = :i"),
                                    {"i": record_id})).scalar_one()
    return bytes(value)
