"""The audit trail in PostgreSQL: append-only by trigger, linear chain, tampering found by verify."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app import audit
from app.audit_verify import VerifyResult, verify_chain
from app.db import make_sessionmaker
from app.security import Principal
from app.settings import Settings

ALICE = Principal(actor="key:0a1b2c3d", role="coordinator")
ROOT = Path(__file__).resolve().parents[2]


async def _append(engine: AsyncEngine, n: int, *, start: int = 0) -> None:
    async with make_sessionmaker(engine)() as session:
        for i in range(start, start + n):
            await audit.record(
                session, ALICE, action="update", entity_type="shipment", entity_id=f"S-{i}",
                before={"status": "packed", "i": i}, after={"status": "in_transit", "i": i},
                reason=f"change {i}",
            )
        await session.commit()


async def _verify(engine: AsyncEngine) -> VerifyResult:
    async with make_sessionmaker(engine)() as session:
        return await verify_chain(session)


async def _owner_tamper(engine: AsyncEngine, sql: str, **params: object) -> None:
    """What a database owner can do behind the application's back: disable the trigger, edit."""
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        await conn.execute(text(sql), params)
        await conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))


async def test_records_form_an_intact_chain(db: AsyncSession, engine: AsyncEngine) -> None:
    await _append(engine, 5)
    result = await _verify(engine)
    assert result.ok and result.checked == 5 and result.head_id == 5
    rows = (await db.execute(text("SELECT prev_hash, hash FROM audit_log ORDER BY id"))).all()
    assert bytes(rows[0].prev_hash) == audit.GENESIS
    for previous, current in zip(rows, rows[1:], strict=False):
        assert bytes(current.prev_hash) == bytes(previous.hash)
    assert result.head_hash == bytes(rows[-1].hash).hex()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET reason = 'rewritten' WHERE id = 2",
        "DELETE FROM audit_log WHERE id = 2",
        "TRUNCATE audit_log",
    ],
)
async def test_the_database_refuses_update_delete_and_truncate(
    db: AsyncSession, engine: AsyncEngine, statement: str
) -> None:
    await _append(engine, 3)
    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    assert (await _verify(engine)).checked == 3


async def test_an_insert_that_does_not_link_to_the_head_is_refused(
    db: AsyncSession, engine: AsyncEngine
) -> None:
    await _append(engine, 2)
    forged = {"prev": b"\x11" * 32, "hash": hashlib.sha256(b"forged").digest()}
    with pytest.raises(DBAPIError, match="does not link to the head"):
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO audit_log (at, actor, action, entity_type, entity_id, prev_hash, hash) "
                "VALUES (now(), 'mallory', 'create', 'x', '1', :prev, :hash)"
            ), forged)


async def test_verify_names_a_row_altered_behind_the_application(
    db: AsyncSession, engine: AsyncEngine
) -> None:
    await _append(engine, 6)
    await _owner_tamper(
        engine, "UPDATE audit_log SET after = CAST(:after AS jsonb) WHERE id = 4",
        after=json.dumps({"status": "delivered", "i": 3}),
    )
    result = await _verify(engine)
    assert not result.ok
    assert result.broken_id == 4 and result.checked == 3
    assert "altered" in (result.problem or "")


async def test_verify_finds_a_removed_row_and_a_recomputed_hash(
    db: AsyncSession, engine: AsyncEngine
) -> None:
    await _append(engine, 6)
    await _owner_tamper(engine, "DELETE FROM audit_log WHERE id = 3")
    result = await _verify(engine)
    assert (result.ok, result.broken_id) == (False, 4)
    assert "does not link to record #2" in (result.problem or "")

    # A cleverer forger also rewrites the altered record's own hash: the next link breaks.
    await truncate_audit(engine)
    await _append(engine, 4)
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM audit_log WHERE id = 2"))).mappings().one()
    fields = audit.hashed_fields(
        at=row["at"], actor=row["actor"], role=row["role"], action=row["action"],
        entity_type=row["entity_type"], entity_id=row["entity_id"], before=row["before"],
        after={"status": "rejected"}, reason=row["reason"],
    )
    new_hash = audit.record_digest(bytes(row["prev_hash"]), fields)
    await _owner_tamper(
        engine, "UPDATE audit_log SET after = CAST(:after AS jsonb), hash = :hash WHERE id = 2",
        after=json.dumps({"status": "rejected"}), hash=new_hash,
    )
    result = await _verify(engine)
    assert (result.ok, result.broken_id) == (False, 3)


async def test_superuser_replica_mode_edit_is_detected_too(
    db: AsyncSession, engine: AsyncEngine
) -> None:
    await _append(engine, 3)
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE id = 1"))
    result = await _verify(engine)
    assert (result.ok, result.broken_id) == (False, 1)


async def test_concurrent_writers_keep_one_linear_chain(
    db: AsyncSession, engine: AsyncEngine
) -> None:
    await asyncio.gather(*(_append(engine, 5, start=10 * w) for w in range(4)))
    result = await _verify(engine)
    assert result.ok and result.checked == 20


async def test_values_survive_the_jsonb_round_trip(db: AsyncSession, engine: AsyncEngine) -> None:
    awkward = {
        "integral_float": 5.0, "huge": 1e20, "tiny": 1.5e-10, "third": 1 / 3, "big_int": 2**70,
        "nan": float("nan"), "inf": float("-inf"), "nul": "a\x00b", "unicode": "Zürich ❄ 𝄞",
        "when": datetime(2026, 11, 20, 8, 0, 0, 123456, tzinfo=UTC), "raw": b"\x00\xff",
        "nested": {"z": [1, 2.5, {"k": None}], "a": True}, "tags": {"b", "a"},
    }
    async with make_sessionmaker(engine)() as session:
        await audit.record(session, ALICE, action="update", entity_type="product",
                           entity_id="P-1", before=awkward, after={"empty": {}}, reason="é\x00")
        await session.commit()
    result = await _verify(engine)
    assert result.ok and result.checked == 1


async def test_cli_verify_exits_non_zero_and_names_the_broken_record(
    db: AsyncSession, engine: AsyncEngine, settings: Settings
) -> None:
    await _append(engine, 3)
    env = {**os.environ, "DATABASE_URL": settings.database_url or "", "MQTT_URL": "mqtt://unused"}
    command = [sys.executable, "-m", "app.cli", "audit", "verify"]
    ok = await asyncio.to_thread(
        subprocess.run, command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    assert "audit chain OK: 3 records" in ok.stdout

    await _owner_tamper(engine, "UPDATE audit_log SET reason = 'nothing to see' WHERE id = 2")
    broken = await asyncio.to_thread(
        subprocess.run, command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert broken.returncode == 1
    assert "BROKEN at record #2" in broken.stdout


async def truncate_audit(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text("TRUNCATE audit_log RESTART IDENTITY"))
