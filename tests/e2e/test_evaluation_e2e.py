"""End to end: logger telemetry over MQTT → ingest worker → evaluation worker → GET /alerts.

Real mosquitto and PostgreSQL; both workers run in-process on the real clock, so readings are
placed in the recent past (ingest refuses timestamps from the future).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alerts import worker as alerts_worker
from alerts.rules import EvalConfig
from app.core.db import make_sessionmaker, plain_url
from app.core.settings import Settings
from ingest import worker as ingest_worker
from tests.e2e.ingest_support import Publisher, eventually, forget_session
from tests.factories import shipment_setup
from tests.waits import evaluation_idle, until

API = "/api/v1"
AMS = (52.31, 4.76)
BOS = (42.36, -71.01)
PARIS = (48.85, 2.35)


@dataclass
class System:
    settings: Settings
    client: httpx.AsyncClient
    start: datetime  # packing time of the shipments: 12 h ago

    def at(self, minutes: float) -> datetime:
        return self.start + timedelta(minutes=minutes)

    def reading(self, minutes: float, temp: float, **extra: Any) -> dict[str, Any]:
        ts = self.at(minutes).isoformat().replace("+00:00", "Z")
        body = {"ts": ts, "temp_c": temp, "lat": AMS[0], "lon": AMS[1], "battery_pct": 80,
                "light": False, "shock_g": 0.2, **extra}
        return {k: v for k, v in body.items() if v is not None}

    async def publish(self, logger_id: str, *payloads: dict[str, Any]) -> None:
        topic = f"{self.settings.topic_prefix}/loggers/{logger_id}/telemetry"

        def send() -> None:
            publisher = Publisher(self.settings.mqtt_url or "")
            try:
                for body in payloads:
                    publisher.publish(topic, orjson.dumps(body))
            finally:
                publisher.close()

        await asyncio.to_thread(send)

    async def shipment(self, reference: str, logger_id: str, **over: Any) -> str:
        body = {"packed_at": self.start.isoformat(), "departed_at": self.start.isoformat(), **over}
        created = await shipment_setup(self.client, reference=reference, logger_ids=(logger_id,),
                                       **body)
        return str(created["id"])

    async def alerts(self, shipment_id: str) -> dict[str, dict[str, Any]]:
        """The newest alert of each kind."""
        items = (await self.client.get(f"{API}/alerts", params={"shipment_id": shipment_id})
                 ).json()["items"]
        return {a["kind"]: a for a in reversed(items)}

    async def wait_kinds(self, shipment_id: str, kinds: set[str]) -> dict[str, dict[str, Any]]:
        async def seen() -> dict[str, dict[str, Any]] | None:
            alerts = await self.alerts(shipment_id)
            return alerts if kinds <= set(alerts) else None

        found = await eventually(seen, timeout=30)
        assert found, f"{kinds - set(await self.alerts(shipment_id))} not raised"
        return found

    async def wait_readings(self, shipment_id: str, count: int) -> None:
        async def stored() -> bool:
            body = (await self.client.get(f"{API}/shipments/{shipment_id}")).json()
            return bool(body["reading_count"] >= count)

        assert await eventually(stored, timeout=30), "readings not evaluated"


@pytest.fixture
async def system(
    settings: Settings, client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> AsyncIterator[System]:
    live = settings.model_copy(update={
        "topic_prefix": f"{settings.topic_prefix}/{secrets.token_hex(3)}",
        "ingest_batch_wait_ms": 20,
    })
    stop, ready = asyncio.Event(), asyncio.Event()
    ingest = asyncio.create_task(ingest_worker.run(live, stop, ready=ready))
    alerts = asyncio.create_task(alerts_worker.serve(
        make_sessionmaker(engine), plain_url(live.database_url or ""), EvalConfig(), stop,
        period_s=0.2,
    ))
    await asyncio.wait_for(ready.wait(), 20)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=12)
    try:
        yield System(live, client, start)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(ingest, alerts), 30)
        await asyncio.to_thread(forget_session, live.mqtt_url or "",
                                ingest_worker.client_id(live))


async def test_clean_shipment_raises_no_alert_at_all(system: System, engine: AsyncEngine) -> None:
    # Live: packed an hour ago, reporting every 5 min up to now, 1 h at AMS (6 h allowed),
    # departure recorded once it left.
    system.start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=58)
    sid = await system.shipment("CLEAN", "LOG-C", departed_at=None)
    readings = [system.reading(m, 4.5 + (m % 15) / 10) for m in range(0, 60, 5)]
    await system.publish("LOG-C", readings[0])
    await system.wait_readings(sid, 1)
    # Recorded at the time, before later readings came in (a later entry would need a reason).
    departed = await system.client.post(f"{API}/shipments/{sid}/events", json={
        "type": "departed", "at": system.at(1).isoformat()})
    assert departed.status_code == 201, departed.text
    await system.publish("LOG-C", *readings[1:])
    await system.wait_readings(sid, 12)
    # Done with it (departure included): what it would wrongly raise, it has raised by now.
    await until(lambda: evaluation_idle(engine, [sid]), "the worker done with the shipment")
    assert await system.alerts(sid) == {}
    body = (await system.client.get(f"{API}/shipments/{sid}")).json()
    assert body["time_out_of_range_s"] == 0 and body["min_c"] == 4.5 and body["max_c"] == 5.5
    assert body["margin_h"] == pytest.approx(65.983, abs=0.001) and body["mkt_c"] is not None
    assert (await system.client.get(f"{API}/shipments/{sid}/excursions")).json()["items"] == []


async def test_temperature_kinds_and_the_stability_budget(system: System) -> None:
    sid = await system.shipment("WARM", "LOG-T", product={
        "critical_max_c": 15.0, "stability_budget_s": 600})
    await system.publish("LOG-T", system.reading(0, 5.0), system.reading(5, 9.0),
                         system.reading(10, 16.0), system.reading(15, 1.0),
                         system.reading(20, 5.0))
    alerts = await system.wait_kinds(sid, {"temperature_high", "temperature_critical",
                                           "temperature_low", "stability_budget"})
    assert alerts["temperature_critical"]["severity"] == "critical"
    assert alerts["temperature_high"]["condition_since"] == system.at(5).isoformat().replace(
        "+00:00", "Z")
    assert alerts["stability_budget"]["severity"] == "critical"  # 15 min out of a 10 min budget
    excursions = (await system.client.get(f"{API}/shipments/{sid}/excursions")).json()["items"]
    assert {e["kind"] for e in excursions} == {"temperature_high", "temperature_critical",
                                               "temperature_low"}


async def test_sensor_kinds_light_shock_battery_route(system: System) -> None:
    sid = await system.shipment("BUMPY", "LOG-S", product={"shock_limit_g": 5.0})
    await system.publish(
        "LOG-S", system.reading(0, 5.0), system.reading(5, 5.0, light=True),
        system.reading(10, 5.0, shock_g=12.0), system.reading(15, 5.0, battery_pct=10),
        system.reading(20, 5.0, lat=PARIS[0], lon=PARIS[1]),
        system.reading(25, 5.0, lat=PARIS[0], lon=PARIS[1]),
        system.reading(30, 5.0, lat=PARIS[0], lon=PARIS[1]),
    )
    alerts = await system.wait_kinds(sid, {"light_exposure", "shock", "battery_low",
                                           "route_deviation"})
    assert alerts["shock"]["details"]["max_shock_g"] == 12.0
    assert alerts["route_deviation"]["details"]["max_deviation_km"] > 100


async def test_hold_time_at_risk_and_dwell_exceeded(system: System) -> None:
    # 96 h hold, 30 h transit; 9 h and counting at Boston customs (8 h allowed): arrival +1 h.
    dwell = await system.shipment("CUSTOMS", "LOG-D")
    await system.publish("LOG-D", *(system.reading(m, 5.0, lat=BOS[0], lon=BOS[1])
                                    for m in range(180, 12 * 60, 30)))
    alerts = await system.wait_kinds(dwell, {"dwell_exceeded"})
    assert alerts["dwell_exceeded"]["details"]["waypoint"] == "BOS customs"
    # A 40 h hold against a 30 h lane: 10 h margin, below the 24 h safety margin.
    risky = await system.shipment("TIGHT", "LOG-H", hold_h=40)
    await system.publish("LOG-H", system.reading(0, 5.0, lat=None, lon=None))  # en route
    alerts = await system.wait_kinds(risky, {"hold_time_at_risk"})
    assert alerts["hold_time_at_risk"]["details"]["margin_h"] == pytest.approx(10.0)


async def test_hold_time_exceeded_is_critical(system: System) -> None:
    late = await system.shipment("LATE", "LOG-X", hold_h=6)  # deadline passed 6 h ago
    await system.publish("LOG-X", system.reading(0, 5.0))
    alerts = await system.wait_kinds(late, {"hold_time_exceeded"})
    assert alerts["hold_time_exceeded"]["severity"] == "critical"


async def test_signal_lost_on_time_and_back(system: System) -> None:
    system.start = datetime.now(UTC) - timedelta(minutes=10)
    sid = await system.shipment("QUIET", "LOG-Q", max_gap_s=3)
    last = datetime.now(UTC)
    await system.publish("LOG-Q", {**system.reading(0, 5.0), "ts": last.isoformat()})
    sent = datetime.now(UTC)

    async def lost_after_data() -> dict[str, Any] | None:
        alert = (await system.alerts(sid)).get("signal_lost")
        since = datetime.fromisoformat(alert["condition_since"]) if alert else None
        return alert if alert and alert["state"] == "open" and since and since > sent - \
            timedelta(seconds=5) else None

    lost = await eventually(lost_after_data, timeout=30)
    assert lost, "no signal_lost after the logger fell silent"
    # Never before the max gap has passed (how soon after depends on the load: no test's to say).
    assert datetime.fromisoformat(lost["opened_at"]) >= last + timedelta(seconds=3)
    await system.publish("LOG-Q", {**system.reading(0, 5.0), "ts": datetime.now(UTC).isoformat()})

    async def back() -> bool:
        alert = (await system.client.get(f"{API}/alerts/{lost['id']}")).json()
        return bool(alert["state"] == "resolved")

    assert await eventually(back, timeout=30)


async def test_late_store_and_forward_batch_reveals_a_past_excursion(system: System) -> None:
    sid = await system.shipment("GAP", "LOG-G")
    live = [system.reading(m, 5.0) for m in (*range(0, 31, 5), *range(90, 121, 5))]
    await system.publish("LOG-G", *live)
    await system.wait_readings(sid, len(live))
    assert "temperature_high" not in await system.alerts(sid)
    gap = [system.reading(m, 12.0 if 50 <= m <= 60 else 5.0) for m in range(35, 90, 5)]
    await system.publish("LOG-G", {"readings": gap[::-1]})  # store-and-forward, any order
    alerts = await system.wait_kinds(sid, {"temperature_high"})
    assert alerts["temperature_high"]["retroactive"] is True
    assert alerts["temperature_high"]["condition_since"] == system.at(50).isoformat().replace(
        "+00:00", "Z")
