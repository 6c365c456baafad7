"""The cadence scenarios through the broker: a logger at 1, 5, 15 or 60 min publishes its record
over MQTT (store-and-forward batches, as cellular loggers do), the real ingest worker stores it,
the real engine judges it on an injected clock that starts at the real one.

The live transitions of the same scenarios are asserted in `tests/db/test_engine_cadence.py`
(there the receive clock is injected too: hours of device time cannot arrive live through a
broker within a test). Here: what arrives after the fact is retroactive and waits for a person,
a person's resolution holds against the same hovering, and a silent logger's last value, received
live, alarms on the engine's clock.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.models import Alert, Reading
from app.core.settings import Settings
from ingest import worker as ingest_worker
from tests.api.keys import bearer, make_key
from tests.db.cadence_support import CONFIG, INTERVALS, clear_k
from tests.db.engine_support import Clock, round_, state_of
from tests.e2e.ingest_support import Publisher, eventually, forget_session
from tests.factories import shipment_setup

pytestmark = pytest.mark.parametrize("interval", INTERVALS)
HIGH, BUDGET, LOST = "temperature_high", "stability_budget", "signal_lost"


@pytest.fixture(scope="module")
async def broker_ingest(settings: Settings) -> AsyncIterator[Settings]:
    """One ingest worker for the module, on its own topic prefix."""
    live = settings.model_copy(update={
        "topic_prefix": f"{settings.topic_prefix}/{secrets.token_hex(3)}",
        "ingest_batch_wait_ms": 20})
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(ingest_worker.run(live, stop, ready=ready))
    await asyncio.wait_for(ready.wait(), 20)
    try:
        yield live
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await asyncio.to_thread(forget_session, live.mqtt_url or "", ingest_worker.client_id(live))


@dataclass
class Recorder:
    """A logger whose record ends now: reading k was taken at `t(k)`, k = `last` now."""

    settings: Settings
    client: httpx.AsyncClient
    engine: AsyncEngine
    db: AsyncSession
    interval_s: int
    last: float
    now: datetime
    logger_ids: tuple[str, ...] = ()
    shipment_id: str = ""
    sent: int = 0

    def t(self, k: float) -> datetime:
        return self.now - timedelta(seconds=(self.last - k) * self.interval_s)

    async def start(self, n_loggers: int = 1, **product: Any) -> Recorder:
        tag = secrets.token_hex(3)
        self.logger_ids = tuple(f"CAD-{tag}-{i}" for i in range(n_loggers))
        shipment = await shipment_setup(
            self.client, reference=f"CAD-{tag}", logger_ids=self.logger_ids,
            interval_s=self.interval_s, packed_at=self.t(-1).isoformat(),
            departed_at=self.t(-1).isoformat(),
            product={"stability_budget_s": 365 * 86400, **product})
        self.shipment_id = str(shipment["id"])
        return self

    async def publish(self, points: Iterable[tuple[float, float]], logger: int = 0) -> None:
        """One store-and-forward batch over MQTT; returns once ingest has stored it."""
        readings = [{"ts": self.t(k).isoformat(), "temp_c": temp} for k, temp in points]
        topic = f"{self.settings.topic_prefix}/loggers/{self.logger_ids[logger]}/telemetry"

        def send() -> None:
            publisher = Publisher(self.settings.mqtt_url or "")
            try:
                publisher.publish(topic, orjson.dumps({"readings": readings[::-1]}))
            finally:
                publisher.close()

        await asyncio.to_thread(send)
        self.sent += len(readings)

        async def stored() -> bool:
            count = await self.db.scalar(select(func.count()).select_from(Reading).where(
                Reading.logger_id.in_(self.logger_ids)))
            return count == self.sent

        assert await eventually(stored, timeout=30), "ingest did not store the batch"

    async def judge(self, at: datetime | None = None) -> None:
        """A worker round at `at` (default: the real clock, after what was received)."""
        clock = Clock(at or datetime.now(UTC))
        await round_(self.engine, clock, config=CONFIG)

    async def alerts(self) -> list[Alert]:
        self.db.expire_all()
        return list((await self.db.scalars(select(Alert).where(
            Alert.shipment_id == uuid.UUID(self.shipment_id)).order_by(Alert.opened_at, Alert.kind)
        )).all())


@pytest.fixture
async def journey(broker_ingest: Settings, client: httpx.AsyncClient, engine: AsyncEngine,
                  db: AsyncSession, interval: int) -> Recorder:
    now = datetime.now(UTC).replace(microsecond=0)
    return Recorder(broker_ingest, client, engine, db, interval, last=40, now=now)


def shape(alerts: list[Alert]) -> list[tuple[Any, ...]]:
    return [(a.kind, a.severity, a.state, a.retroactive, a.occurrences) for a in alerts]


async def test_hovering_uploaded_is_one_alert_and_a_resolution_holds(
    journey: Recorder, client: httpx.AsyncClient, interval: int,
) -> None:
    lg = await journey.start()
    hover = [(k, 8.1 if k % 2 == 0 else 7.9) for k in range(16)]
    await lg.publish(hover[:8])
    await lg.judge()
    (alert,) = await lg.alerts()
    assert shape([alert]) == [(HIGH, "warning", "open", True, 4)]
    response = await client.post(f"/api/v1/alerts/{alert.id}/resolve", json={
        "comment": "probe against the wall"}, headers=bearer(await make_key(client, "coordinator")))
    assert response.status_code == 200, response.text
    await lg.publish(hover[8:])  # the same hovering goes on: no new alert
    await lg.judge()
    assert shape(await lg.alerts()) == [(HIGH, "warning", "resolved", True, 4)]


async def test_alarm_delay_across_a_hole_in_the_upload(journey: Recorder, interval: int) -> None:
    lg = await journey.start(alarm_delay_s=5 * interval)
    c = clear_k(interval)
    k0 = 17 + c
    await lg.publish([(0, 5.0), *((k, 9.0) for k in range(1, 5)),
                      *((k, 5.0) for k in range(5, 8)), *((k, 9.0) for k in range(8, 15)),
                      *((k, 5.0) for k in range(15, k0)), (k0, 9.0), (k0 + 1, 9.0),
                      (k0 + 6, 9.0), (k0 + 7, 9.0), (k0 + 8, 5.0)])
    await lg.judge()
    (alert,) = await lg.alerts()
    assert shape([alert]) == [(HIGH, "warning", "open", True, 2)]
    assert (alert.condition_since, alert.details["episodes"]) == (lg.t(8), 2)
    excursions = (await lg.client.get(f"/api/v1/shipments/{lg.shipment_id}/excursions")).json()
    assert [(e["alarmed"], e["duration_s"], e["unknown_s"]) for e in excursions["items"]] == [
        (False, 4 * interval, 0), (True, 7 * interval, 0), (True, 6 * interval, 2 * interval)]


async def test_budget_used_up_in_an_upload(journey: Recorder, interval: int) -> None:
    lg = await journey.start(stability_budget_s=4 * interval)
    c = clear_k(interval)
    k1 = 4 + c
    await lg.publish([(0, 5.0), (1, 9.0), (2, 9.0), *((k, 5.0) for k in range(3, k1)),
                      (k1, 9.0), (k1 + 1, 9.0), (k1 + 2, 9.0), (k1 + 3, 5.0)])
    await lg.judge()
    assert shape(await lg.alerts()) == [(BUDGET, "critical", "open", True, 3),
                                        (HIGH, "warning", "open", True, 2)]
    budget = (await lg.alerts())[0]
    assert budget.details["crossed"]["100"] == lg.t(k1 + 2).isoformat()


async def test_a_silent_logger_alarms_on_the_engines_clock(journey: Recorder, interval: int) -> None:
    lg = await journey.start(alarm_delay_s=2 * interval)
    lg.now = datetime.now(UTC).replace(microsecond=0)  # k = 40 is now: received live
    await lg.publish([(k, 5.0) for k in range(36, 40)])
    await lg.publish([(40, 10.0)])
    await lg.judge(lg.t(40))
    assert await lg.alerts() == []
    due = (await state_of(lg.db, lg.shipment_id)).next_check_at
    assert due == lg.t(42)  # the sweep comes back when the delay is met
    await lg.judge(due)
    assert shape(await lg.alerts()) == [(HIGH, "warning", "open", False, 1)]
    await lg.judge(lg.t(43) + timedelta(seconds=30))  # received within 30 s of its time
    assert [a.kind for a in await lg.alerts()] == [HIGH, LOST]


async def test_late_data_found_after_the_fact_is_retroactive(journey: Recorder, interval: int) -> None:
    lg = await journey.start()
    await lg.publish([(k, 5.0) for k in range(6)])
    await lg.judge(lg.t(5))
    await lg.publish([(k, 9.0 if 8 <= k <= 10 else 5.0) for k in range(6, 41)])
    await lg.judge()
    (alert,) = await lg.alerts()
    assert shape([alert]) == [(HIGH, "warning", "open", True, 1)]
    assert (alert.condition_since, alert.peak_c) == (lg.t(8), 9.0)


async def test_two_loggers_uploaded_one_alert_with_the_worst_peak(
    journey: Recorder, interval: int,
) -> None:
    lg = await journey.start(n_loggers=2)
    await lg.publish([(k, 9.0 if 2 <= k <= 4 else 5.0) for k in range(20)], logger=0)
    await lg.publish([(k + 0.5, 10.0 if 3 <= k <= 6 else 5.0) for k in range(20)], logger=1)
    await lg.judge()
    (alert,) = await lg.alerts()
    assert shape([alert]) == [(HIGH, "warning", "open", True, 2)]
    assert (alert.peak_c, alert.details["loggers"], alert.condition_since) == (
        10.0, list(lg.logger_ids), lg.t(2))
