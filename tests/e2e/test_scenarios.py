"""Every scenario end to end: simulator → broker → ingest → evaluation → alerts, back-filled.

All scenarios run at once (each with its own loggers and shipment) against the real workers; the
alerts each shipment ends up with must be exactly the kinds its scenario file promises, and every
reading the loggers sent must be stored once — no loss, no double count, nothing quarantined.
"""

from __future__ import annotations

import asyncio
import importlib
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.db import make_sessionmaker
from app.core.models import Alert, IngestRejection, Reading, Shipment
from app.core.settings import Settings
from app.schemas.reference import LoggerIn
from app.services.reference import create_logger
from simulators import demo, runner
from simulators.logger import SimulatedReading as SimReading
from simulators.payloads import encode_object
from simulators.plan import build
from simulators.provision import SIMULATOR
from simulators.publisher import Publisher, telemetry_topic
from simulators.scenario import library
from tests.conftest import truncate_all
from tests.waits import evaluation_idle

pytestmark = pytest.mark.slow
SCENARIOS = library()
SETTLE_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Outcome:
    result: runner.RunResult
    kinds: Counter[str]
    stored: int
    rejected: int


async def _wait_for_ingest(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
    """Publish a registered probe logger's reading until it is stored: the worker is subscribed."""
    async with sessions() as session:
        await create_logger(session, SIMULATOR, LoggerIn(id="e2e-probe", reporting_interval_s=60))
        await session.commit()
    pub = Publisher(settings.mqtt_url or "").connect()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            payload = encode_object(SimReading(0.0, 1, 5.0), datetime.now(UTC).replace(
                microsecond=0))
            await asyncio.to_thread(pub.publish, telemetry_topic(settings.topic_prefix,
                                                                 "e2e-probe"), payload)
            async with sessions() as session:
                if await session.scalar(select(func.count()).select_from(Reading).where(
                        Reading.logger_id == "e2e-probe")):
                    return
            await asyncio.sleep(0.3)
    finally:
        pub.close()
    raise AssertionError("the ingest worker stored nothing within 30 s")


async def _kinds(sessions: async_sessionmaker[AsyncSession],
                 ids: list[uuid.UUID]) -> dict[uuid.UUID, Counter[str]]:
    async with sessions() as session:
        rows = (await session.execute(select(Alert.shipment_id, Alert.kind).where(
            Alert.shipment_id.in_(ids)))).all()
    found: dict[uuid.UUID, Counter[str]] = {i: Counter() for i in ids}
    for shipment_id, kind in rows:
        found[shipment_id][kind] += 1
    return found


async def _settle(engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession],
                  results: list[runner.RunResult]) -> dict[uuid.UUID, Counter[str]]:
    """Wait until every shipment shows its expected kinds and the worker has nothing left to do
    for them (nothing queued or claimed, no check due): an unexpected alert would be there too."""
    ids = [r.shipment_id for r in results]
    want = {r.shipment_id: set(r.expected) for r in results}
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        found = await _kinds(sessions, ids)
        if all(set(found[i]) == want[i] for i in ids) and await evaluation_idle(
                engine, [str(i) for i in ids]):
            break
        await asyncio.sleep(0.5)
    return await _kinds(sessions, ids)


@pytest.fixture(scope="module")
async def outcomes(
    settings: Settings, engine: AsyncEngine, superuser_engine: AsyncEngine
) -> dict[str, Outcome]:
    ingest_worker = importlib.import_module("ingest.worker")
    alerts_worker = importlib.import_module("alerts.worker")
    await truncate_all(superuser_engine)
    live = settings.model_copy(update={"evaluator_period_s": 1.0})
    sessions = make_sessionmaker(engine)
    stop = asyncio.Event()
    workers = [asyncio.create_task(ingest_worker.run(live, stop), name="ingest"),
               asyncio.create_task(alerts_worker.run(live, stop), name="alerts")]
    try:
        await _wait_for_ingest(live, sessions)
        results = await asyncio.gather(*(
            runner.run(live, sc, speed=None, tag=f"e2e{i:02d}", sessions=sessions)
            for i, sc in enumerate(SCENARIOS.values())))
        kinds = await _settle(engine, sessions, results)
        for task in workers:
            assert not task.done(), f"the {task.get_name()} worker stopped: {task.exception()!r}"
        out: dict[str, Outcome] = {}
        async with sessions() as session:
            for r in results:
                stored = await session.scalar(select(func.count()).select_from(Reading).where(
                    Reading.logger_id.in_(r.logger_ids)))
                rejected = await session.scalar(select(func.count()).select_from(
                    IngestRejection).where(IngestRejection.logger_id.in_(r.logger_ids)))
                out[r.scenario] = Outcome(r, kinds[r.shipment_id], int(stored or 0),
                                          int(rejected or 0))
        return out
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers, return_exceptions=True), 30)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_raises_exactly_its_alerts(outcomes: dict[str, Outcome], name: str) -> None:
    o = outcomes[name]
    assert set(o.kinds) == set(SCENARIOS[name].alerts), (
        f"{name}: expected {sorted(SCENARIOS[name].alerts)}, got {dict(o.kinds)}")
    if SCENARIOS[name].exact_counts:
        assert all(n == 1 for n in o.kinds.values()), dict(o.kinds)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_sent_reading_is_stored_once(outcomes: dict[str, Outcome], name: str) -> None:
    o = outcomes[name]
    assert o.rejected == 0
    assert o.stored == o.result.readings


STATUS_AFTER = {"departed": "in_transit", "customs_hold": "customs_hold",
                "customs_released": "in_transit", "delivered": "delivered",
                "received": "received"}
# Demo shipments whose point in time shows a condition (see simulators/demo.py FLEET).
DEMO_ALERTS = {"DEMO-06": {"hold_time_at_risk", "dwell_exceeded"}, "DEMO-07": {"temperature_high"},
               "DEMO-09": {"light_exposure"}, "DEMO-10": {"route_deviation"},
               "DEMO-11": {"shock"}, "DEMO-13": {"battery_low"}}


def _demo_status(entry: demo.DemoShipment) -> str:
    sc = demo.scenario_for(entry)
    now_s = sc.duration_s if entry.now_h is None else entry.now_h * 3600
    done = [e.type for e in build(sc).events if e.offset_s <= now_s]
    return STATUS_AFTER[done[-1]] if done else "packed"


async def test_demo_brings_a_dozen_shipments_to_life(
    settings: Settings, engine: AsyncEngine, superuser_engine: AsyncEngine
) -> None:
    ingest_worker = importlib.import_module("ingest.worker")
    alerts_worker = importlib.import_module("alerts.worker")
    await truncate_all(superuser_engine)
    live = settings.model_copy(update={"evaluator_period_s": 1.0})
    sessions = make_sessionmaker(engine)
    stop = asyncio.Event()
    await demo.seed(live, sessions)
    tasks = [asyncio.create_task(ingest_worker.run(live, stop)),
             asyncio.create_task(alerts_worker.run(live, stop)),
             asyncio.create_task(demo.run_fleet(live, stop))]
    want = {e.reference: _demo_status(e) for e in demo.FLEET}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            async with sessions() as session:
                got = {ref: status for ref, status in (await session.execute(
                    select(Shipment.reference, Shipment.status))).all()}
            if got == want:
                break
            assert not any(t.done() for t in tasks), [t for t in tasks if t.done()]
            await asyncio.sleep(0.5)
        assert got == want
        assert len(set(want.values())) >= 5  # packed, in transit, customs, delivered, received
        went_live = datetime.now(UTC)
        by_ref = {}
        while time.monotonic() < deadline:
            async with sessions() as session:
                rows = (await session.execute(
                    select(Shipment.reference, Alert.kind).join(
                        Alert, Alert.shipment_id == Shipment.id))).all()
                fresh = await session.scalar(select(func.count()).select_from(Reading).where(
                    Reading.received_at > went_live))
            by_ref = {ref: {k for r, k in rows if r == ref} for ref in DEMO_ALERTS}
            if fresh and all(by_ref[r] >= kinds for r, kinds in DEMO_ALERTS.items()):
                break
            await asyncio.sleep(0.5)
        assert all(by_ref[r] >= kinds for r, kinds in DEMO_ALERTS.items()), by_ref
        assert fresh, "no live reading after the back-fill"
    finally:
        stop.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    assert not [r for r in results if isinstance(r, BaseException)], results
