"""The running `alerts` role: woken by ingest's NOTIFY, stops on its event, survives bad rows."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alerts import worker
from alerts.rules import EvalConfig
from app.core.db import make_sessionmaker, plain_url
from app.core.settings import Settings
from tests.db.engine_support import Clock, alerts_of, at, state_of, store
from tests.factories import T0, shipment_setup
from tests.waits import listeners, until


async def test_worker_wakes_on_notify_evaluates_and_stops(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sid = (await shipment_setup(client, departed_at=T0.isoformat()))["id"]
    monkeypatch.setattr(worker, "IDLE_POLL_S", 3600.0)  # no poll in time: only a NOTIFY wakes it
    started, finished = [], []
    run_cycle = worker.run_cycle

    async def counted(*args: Any, **kwargs: Any) -> int:
        started.append(len(started))
        done = await run_cycle(*args, **kwargs)
        finished.append(done)
        return done

    monkeypatch.setattr(worker, "run_cycle", counted)
    listening = await listeners(engine, worker.CHANNEL)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.serve(
        make_sessionmaker(engine), plain_url(settings.database_url or ""), EvalConfig(), stop,
        period_s=3600, clock=Clock(at(11)),
    ))
    try:
        async def listening_too() -> bool:
            return await listeners(engine, worker.CHANNEL) > listening

        await until(listening_too, "the worker listening")
        await until(lambda: finished, "its first round over: it waits for a NOTIFY now")
        await store(engine, sid, "LOG-1", [(0, 5.0), (5, 9.0), (10, 9.0)])

        async def alerted() -> bool:
            return any(a.kind == "temperature_high" for a in await alerts_of(db, sid))

        await until(alerted, "the alert the NOTIFY's round raises")
        assert len(started) >= 2  # raised by a round the NOTIFY started
        assert (await state_of(db, sid)).reading_count == 3
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_shipment_that_fails_does_not_stop_the_others(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession, owner_engine: AsyncEngine,
) -> None:
    good = (await shipment_setup(client, departed_at=T0.isoformat()))["id"]
    bad = (await shipment_setup(client, departed_at=T0.isoformat(), reference="SHP-2",
                                logger_ids=("LOG-2",)))["id"]
    await store(engine, good, "LOG-1", [(0, 5.0), (5, 9.0)])
    await store(engine, bad, "LOG-2", [(0, 5.0), (5, float("nan")), (10, 9.0)])
    # A database fault while persisting one shipment (as a failing constraint would be); only
    # the owner may add a trigger.
    async with owner_engine.begin() as conn:
        await conn.execute(text(f"""
            CREATE FUNCTION cctest_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.shipment_id = '{bad}' THEN RAISE EXCEPTION 'refused by test'; END IF;
              RETURN NEW;
            END $$"""))
        await conn.execute(text("CREATE TRIGGER cctest_refuse BEFORE INSERT ON excursions "
                                "FOR EACH ROW EXECUTE FUNCTION cctest_refuse()"))
    try:
        done = await worker.run_cycle(make_sessionmaker(engine), EvalConfig(), Clock(at(11)),
                                      sweep=False)
        assert done == 1
        assert [a.kind for a in await alerts_of(db, good)] == ["temperature_high"]
        assert await alerts_of(db, bad) == []
        state = await state_of(db, bad)
        assert state.next_check_at == at(11) + worker.RETRY_AFTER  # later, not in a hot loop
    finally:
        async with owner_engine.begin() as conn:
            await conn.execute(text("DROP TRIGGER cctest_refuse ON excursions"))
            await conn.execute(text("DROP FUNCTION cctest_refuse()"))
    # Once the fault is gone the shipment is judged, the NaN row skipped, not fatal.
    await worker.run_cycle(make_sessionmaker(engine), EvalConfig(), Clock(at(11) + worker.RETRY_AFTER),
                           sweep=True)
    assert [a.kind for a in await alerts_of(db, bad)] == ["temperature_high"]
    assert (await state_of(db, bad)).reading_count == 2
