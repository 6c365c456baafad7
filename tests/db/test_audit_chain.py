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

from app.core import audit
from app.core.db import make_sessionmaker
from app.core.settings import Settings
from tests.db import audit_support as chain

ROOT = Path(__file__).resolve().parents[2]


async def test_records_form_an_intact_chain(db: AsyncSession, engine: AsyncEngine) -> None:
    await chain.append(engine, 5)
    result = await chain.verify(engine)
    assert result.ok and result.checked == 5 and result.head_id == 5
    rows = (await db.execute(text("SELECT prev_hash, hash FROM audit_log ORDER BY id"))).all()
    assert bytes(rows[0].prev_hash) == audit.GENESIS
    for previous, current in zip(rows, rows[1:], strict=False):
        assert bytes(current.prev_hash) == bytes(previous.hash)
    assert result.head_hash == bytes(rows[-1].hash).hex()


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("UPDATE audit_log SET reason = 'rewritten' WHERE id = 2", "permission denied for table"),
        ("DELETE FROM audit_log WHERE id = 2", "permission denied for table"),
        ("TRUNCATE audit_log", "permission denied for table"),
        ("SET session_replication_role = replica", "permission denied to set parameter"),
        ("ALTER TABLE audit_log DISABLE TRIGGER USER", "must be owner of table audit_log"),
        ("DROP TRIGGER audit_log_append_only ON audit_log", "must be owner of relation audit_log"),
        ("CREATE TABLE audit_log_copy (id int)", "permission denied for schema public"),
    ],
)
async def test_the_service_role_cannot_rewrite_the_trail_or_switch_its_guards_off(
    db: AsyncSession, engine: AsyncEngine, statement: str, refusal: str
) -> None:
    await chain.append(engine, 3)
    with pytest.raises(DBAPIError, match=refusal):
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    assert (await chain.verify(engine)).checked == 3


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET reason = 'rewritten' WHERE id = 2", "DELETE FROM audit_log WHERE id = 2",
     "TRUNCATE audit_log"],
)
async def test_even_the_owner_is_refused_while_the_triggers_stand(
    db: AsyncSession, engine: AsyncEngine, owner_engine: AsyncEngine, statement: str
) -> None:
    await chain.append(engine, 3)
    with pytest.raises(DBAPIError, match="append-only"):
        async with owner_engine.begin() as conn:
            await conn.execute(text(statement))
    assert (await chain.verify(engine)).checked == 3


@pytest.mark.parametrize(
    ("next_id", "prev", "words"),
    [(3, "forged", "does not link to the head"), (4, "head", "does not link to the head"),
     (2, "head", "does not link to the head")],
)
async def test_an_insert_that_does_not_continue_the_chain_is_refused(
    db: AsyncSession, engine: AsyncEngine, next_id: int, prev: str, words: str
) -> None:
    await chain.append(engine, 2)
    head = await chain.head(engine)
    prev_hash = head.hash if prev == "head" else b"\x11" * 32
    with pytest.raises(DBAPIError, match=words):
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO audit_log (id, at, actor, action, entity_type, entity_id, prev_hash, "
                "hash) VALUES (:id, now(), 'mallory', 'create', 'x', '1', :prev, :hash)"
            ), {"id": next_id, "prev": prev_hash, "hash": hashlib.sha256(b"forged").digest()})


async def test_ids_have_no_holes_even_after_a_rolled_back_audited_transaction(
    db: AsyncSession, engine: AsyncEngine
) -> None:
    await chain.append(engine, 2)
    async with make_sessionmaker(engine)() as session:
        await audit.record(session, chain.ALICE, action="update", entity_type="shipment",
                           entity_id="S-x", after={"status": "lost"}, reason="never happened")
        await audit.flush_pending(session)  # the record was written, then the transaction fails
        await session.rollback()
    await asyncio.gather(*(chain.append(engine, 3, start=10 * w) for w in range(4)))
    ids = (await db.execute(text("SELECT id FROM audit_log ORDER BY id"))).scalars().all()
    assert ids == list(range(1, 15))
    assert (await chain.verify(engine)).ok


async def test_verify_names_a_row_altered_behind_the_application(
    db: AsyncSession, engine: AsyncEngine, owner_engine: AsyncEngine
) -> None:
    await chain.append(engine, 6)
    await chain.owner_tamper(
        owner_engine, "UPDATE audit_log SET after = CAST(:after AS jsonb) WHERE id = 4",
        after=json.dumps({"status": "delivered", "i": 3}),
    )
    result = await chain.verify(engine)
    assert not result.ok
    assert result.broken_id == 4 and result.checked == 3
    assert "altered" in (result.problem or "")


async def test_verify_finds_a_removed_row_and_a_recomputed_hash(
    db: AsyncSession, engine: AsyncEngine, owner_engine: AsyncEngine,
    superuser_engine: AsyncEngine,
) -> None:
    await chain.append(engine, 6)
    await chain.owner_tamper(owner_engine, "DELETE FROM audit_log WHERE id = 3")
    result = await chain.verify(engine)
    assert (result.ok, result.broken_id) == (False, 4)
    assert "does not link to record #2" in (result.problem or "")

    # A cleverer forger also rewrites the altered record's own hash: the next link breaks.
    await chain.truncate_audit(superuser_engine)
    await chain.append(engine, 4)
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM audit_log WHERE id = 2"))).mappings().one()
    fields = audit.hashed_fields(
        at=row["at"], actor=row["actor"], role=row["role"], action=row["action"],
        entity_type=row["entity_type"], entity_id=row["entity_id"], before=row["before"],
        after={"status": "rejected"}, reason=row["reason"],
    )
    new_hash = audit.record_digest(bytes(row["prev_hash"]), fields)
    await chain.owner_tamper(
        owner_engine, "UPDATE audit_log SET after = CAST(:after AS jsonb), hash = :hash WHERE id = 2",
        after=json.dumps({"status": "rejected"}), hash=new_hash,
    )
    result = await chain.verify(engine)
    assert (result.ok, result.broken_id) == (False, 3)


async def test_superuser_replica_mode_edit_is_detected_too(
    db: AsyncSession, engine: AsyncEngine, superuser_engine: AsyncEngine
) -> None:
    await chain.append(engine, 3)
    async with superuser_engine.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE id = 1"))
    result = await chain.verify(engine)
    assert (result.ok, result.broken_id) == (False, 1)


async def test_concurrent_writers_keep_one_linear_chain(
    db: AsyncSession, engine: AsyncEngine
) -> None:
    await asyncio.gather(*(chain.append(engine, 5, start=10 * w) for w in range(4)))
    result = await chain.verify(engine)
    assert result.ok and result.checked == 20


async def test_values_survive_the_jsonb_round_trip(db: AsyncSession, engine: AsyncEngine) -> None:
    awkward = {
        "integral_float": 5.0, "huge": 1e20, "tiny": 1.5e-10, "third": 1 / 3, "big_int": 2**70,
        "nan": float("nan"), "inf": float("-inf"), "nul": "a\x00b", "unicode": "Zürich ❄ 𝄞",
        "when": datetime(2026, 11, 20, 8, 0, 0, 123456, tzinfo=UTC), "raw": b"\x00\xff",
        "nested": {"z": [1, 2.5, {"k": None}], "a": True}, "tags": {"b", "a"},
    }
    async with make_sessionmaker(engine)() as session:
        await audit.record(session, chain.ALICE, action="update", entity_type="product",
                           entity_id="P-1", before=awkward, after={"empty": {}}, reason="é\x00")
        await session.commit()
    result = await chain.verify(engine)
    assert result.ok and result.checked == 1


async def test_cli_verify_exits_non_zero_and_names_the_broken_record(
    db: AsyncSession, engine: AsyncEngine, owner_engine: AsyncEngine, settings: Settings
) -> None:
    await chain.append(engine, 3)
    env = {**os.environ, "DATABASE_URL": settings.database_url or "", "MQTT_URL": "mqtt://unused"}
    command = [sys.executable, "-m", "app.cli", "audit", "verify"]
    ok = await asyncio.to_thread(
        subprocess.run, command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
    assert "audit chain OK: 3 records" in ok.stdout

    await chain.owner_tamper(owner_engine, "UPDATE audit_log SET reason = 'nothing to see' WHERE id = 2")
    broken = await asyncio.to_thread(
        subprocess.run, command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert broken.returncode == 1
    assert "BROKEN at record #2" in broken.stdout
