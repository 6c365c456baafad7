"""The engine against the real database: live and late data, flapping, several loggers, replay."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alerts import series_io, worker
from alerts.rules import EvalConfig
from app.core.db import make_sessionmaker
from app.core.models import AlertEvent, AuditRecord, EvaluationCheckpoint, Excursion
from tests.db.engine_support import Clock, alerts_of, at, count, round_, state_of, store
from tests.factories import T0, shipment_setup


async def _shipment(client: httpx.AsyncClient, **over: object) -> str:
    return str((await shipment_setup(client, departed_at=T0.isoformat(), **over))["id"])  # type: ignore[arg-type]


async def test_clean_shipment_raises_nothing_and_keeps_its_summary(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    sid = await _shipment(client)
    await store(engine, sid, "LOG-1", [(m, 4.0 + (m % 20) / 10) for m in range(0, 121, 5)])
    await round_(engine, Clock(at(121)))
    assert await alerts_of(db, sid) == []
    state = await state_of(db, sid)
    assert (state.reading_count, state.min_c, state.max_c) == (25, 4.0, 5.5)
    assert state.time_out_of_range_s == 0 and state.at_risk is False
    assert state.mkt_c is not None and 4.0 < state.mkt_c < 5.5
    assert state.expected_arrival == T0.replace(day=21, hour=14)  # departed + 30 h
    assert state.margin_h == 66.0  # packed T0 + 96 h hold − 30 h
    body = (await client.get(f"/api/v1/shipments/{sid}")).json()
    assert body["reading_count"] == 25 and body["time_out_of_range_s"] == 0
    assert body["hold_deadline"] == "2026-11-24T08:00:00Z" and body["margin_h"] == 66.0
    assert (await client.get(f"/api/v1/shipments/{sid}/excursions")).json()["items"] == []


async def test_live_excursion_opens_at_once_and_resolves_after_the_clear_time(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    sid = await _shipment(client)
    clock = Clock(at(0))
    for m in range(0, 56, 5):
        await store(engine, sid, "LOG-1", [(m, 9.0 if 20 <= m <= 35 else 5.0)])
        clock.set(at(m) + (at(1) - at(0.5)))
        await round_(engine, clock)
        alerts = await alerts_of(db, sid)
        if m < 20:
            assert alerts == []
        elif m < 55:  # open from the first warm reading; back in range at 40 but not yet clear
            (alert,) = alerts
            assert (alert.state, alert.condition_since, alert.retroactive) == ("open", at(20), False)
    (alert,) = await alerts_of(db, sid)
    assert alert.state == "resolved" and alert.resolved_by == "system"
    assert alert.details["duration_s"] == 1200  # 20 → 40 min
    types = (await db.scalars(select(AlertEvent.type).where(AlertEvent.alert_id == alert.id)
                              .order_by(AlertEvent.id))).all()
    assert types == ["opened", "resolved"]
    assert await count(db, AuditRecord, entity_type="alert", entity_id=str(alert.id)) == 2
    (exc,) = (await client.get(f"/api/v1/shipments/{sid}/excursions")).json()["items"]
    assert (exc["start"], exc["end"], exc["duration_s"], exc["peak_c"]) == (
        "2026-11-20T08:20:00Z", "2026-11-20T08:40:00Z", 1200.0, 9.0)


async def test_flapping_at_the_limit_is_one_alert_not_a_storm(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    sid = await _shipment(client, product={"stability_budget_s": 86400})
    clock = Clock(at(0))
    for m in range(0, 61, 5):
        await store(engine, sid, "LOG-1", [(m, 8.2 if (m // 5) % 2 else 7.9)])
        clock.set(at(m + 1))
        await round_(engine, clock)
    (alert,) = await alerts_of(db, sid)
    assert alert.state == "open" and alert.occurrences == 6
    events = (await db.scalars(select(AlertEvent.type).where(AlertEvent.alert_id == alert.id))).all()
    assert list(events) == ["opened"]
    assert await count(db, Excursion, shipment_id=uuid.UUID(sid)) == 6  # the record keeps all


async def test_late_batch_reveals_a_past_excursion_as_retroactive(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    sid = await _shipment(client)
    clock = Clock(at(31))
    await store(engine, sid, "LOG-1", [(m, 5.0) for m in range(0, 31, 5)])
    await round_(engine, clock)
    clock.set(at(60))  # silent since 30 min: the max gap (15 min) has passed
    await round_(engine, clock)
    (lost,) = await alerts_of(db, sid)
    assert (lost.kind, lost.condition_since, lost.state) == ("signal_lost", at(45), "open")
    clock.set(at(91))  # back in coverage: live data flows again
    await store(engine, sid, "LOG-1", [(90, 5.0)])
    await round_(engine, clock)
    assert [(a.kind, a.state) for a in await alerts_of(db, sid)] == [("signal_lost", "resolved")]
    # Store-and-forward: the logger uploads what it recorded in the gap, 50–60 min warm.
    clock.set(at(95))
    gap = [(m, 12.0 if 50 <= m <= 60 else 5.0) for m in range(35, 90, 5)]
    await store(engine, sid, "LOG-1", gap, received=at(95))
    await round_(engine, clock)
    await round_(engine, clock)  # a second pass changes nothing
    alerts = {a.kind: a for a in await alerts_of(db, sid)}
    warm = alerts["temperature_high"]
    assert (warm.condition_since, warm.retroactive, warm.state) == (at(50), True, "open")
    assert len(await alerts_of(db, sid)) == 2
    state = await state_of(db, sid)
    assert state.time_out_of_range_s == 900 and state.time_unknown_s == 0
    (exc,) = (await client.get(f"/api/v1/shipments/{sid}/excursions")).json()["items"]
    assert exc["retroactive"] is True and exc["start"] == "2026-11-20T08:50:00Z"
    listed = (await client.get("/api/v1/alerts", params={"retroactive": "true"})).json()
    assert [a["kind"] for a in listed["items"]] == ["temperature_high"]


async def test_several_loggers_each_judged_alone_the_shipment_takes_the_worst(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    sid = await _shipment(client, logger_ids=("LOG-1", "LOG-2"))
    await store(engine, sid, "LOG-1", [(m, 5.0) for m in range(0, 61, 5)])
    await store(engine, sid, "LOG-2", [(m + 2, 9.0 if 20 <= m < 40 else 5.0)
                                       for m in range(0, 61, 5)])
    await round_(engine, Clock(at(63)))
    (alert,) = await alerts_of(db, sid)
    assert alert.kind == "temperature_high" and alert.details["loggers"] == ["LOG-2"]
    state = await state_of(db, sid)
    assert state.reading_count == 26 and state.time_out_of_range_s == 1200
    assert (state.min_c, state.max_c) == (5.0, 9.0)


async def test_late_data_replays_from_a_checkpoint_and_matches_a_full_recompute(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    config = EvalConfig(checkpoint_every=4)
    sid = await _shipment(client)
    first = [(m, 5.0 + (m % 3)) for m in range(0, 200, 5) if not 150 <= m <= 160]
    await store(engine, sid, "LOG-1", first)
    await round_(engine, Clock(at(200)), config=config)
    assert await count(db, EvaluationCheckpoint, shipment_id=uuid.UUID(sid)) == 9
    await store(engine, sid, "LOG-1", [(152, 9.5), (157, 5.0)], received=at(201))
    maker = make_sessionmaker(engine)
    async with maker() as session, session.begin():
        await worker.claim(session, now=at(201))
    async with maker() as session, session.begin():
        result = await worker.process_pending(session, now=at(201), config=config)
    assert result.stats.replays == 1 and result.stats.readings < 12  # not the 40 before
    replayed = (await state_of(db, sid)).engine_state
    async with maker() as session, session.begin():  # forget everything: judge from scratch
        await session.execute(EvaluationCheckpoint.__table__.delete())
        state = await state_of(session, sid)
        state.engine_state = None
    await store(engine, sid, "LOG-1", [(0, 5.0)])
    await round_(engine, Clock(at(201)), config=config)
    assert (await state_of(db, sid)).engine_state == replayed


async def test_long_history_read_in_pages_gives_the_same_record(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sid = await _shipment(client)
    points = [(m, 9.0 if 20 <= m <= 40 or 70 <= m <= 75 else 5.0) for m in range(0, 100, 5)]
    await store(engine, sid, "LOG-1", points)
    monkeypatch.setattr(series_io, "PAGE", 3)  # excursions straddle page boundaries
    await round_(engine, Clock(at(100)))
    paged = (await client.get(f"/api/v1/shipments/{sid}/excursions")).json()["items"]
    state = (await state_of(db, sid)).engine_state
    assert [(e["start"], e["end"], e["duration_s"]) for e in paged] == [
        ("2026-11-20T08:20:00Z", "2026-11-20T08:45:00Z", 1500.0),
        ("2026-11-20T09:10:00Z", "2026-11-20T09:20:00Z", 600.0),
    ]
    async with make_sessionmaker(engine)() as session, session.begin():  # judge again, unpaged
        row = await state_of(session, sid)
        row.engine_state = None
    monkeypatch.setattr(series_io, "PAGE", 20_000)
    await store(engine, sid, "LOG-1", [(0, 5.0)])
    await round_(engine, Clock(at(100)))
    assert (await client.get(f"/api/v1/shipments/{sid}/excursions")).json()["items"][0]["start"] \
        == paged[0]["start"]
    assert (await state_of(db, sid)).engine_state == state


async def test_readings_read_past_the_claim_are_not_mistaken_for_late_data(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    sid = await _shipment(client)
    maker = make_sessionmaker(engine)
    config = EvalConfig(checkpoint_every=2)

    async def step() -> tuple[int, int]:
        async with maker() as session, session.begin():
            result = await worker.process_pending(session, now=at(60), config=config)
        return result.stats.replays, result.stats.readings

    await store(engine, sid, "LOG-1", [(0, 5.0)])
    async with maker() as session, session.begin():
        await worker.claim(session, now=at(60))
    await step()
    await store(engine, sid, "LOG-1", [(5, 5.0), (10, 5.0)])
    async with maker() as session, session.begin():
        await worker.claim(session, now=at(60))  # dirty from 5 min
    # Ingest commits more before the engine reads: it folds them too (up to 25 min) ...
    await store(engine, sid, "LOG-1", [(15, 5.0), (20, 9.0), (25, 5.0)])
    assert await step() == (0, 5)
    async with maker() as session, session.begin():
        await worker.claim(session, now=at(60))  # ... so this mark (15 min) is nothing new
    assert await step() == (0, 0)
    await store(engine, sid, "LOG-1", [(12, 9.0)], received=at(60))  # genuinely late
    async with maker() as session, session.begin():
        await worker.claim(session, now=at(60))
    replays, readings = await step()
    assert replays == 1 and readings < 6
    state = await state_of(db, sid)
    assert state.reading_count == 7 and state.time_out_of_range_s == 3 * 60 + 5 * 60
