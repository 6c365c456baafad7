"""Faults: PostgreSQL and the broker restarted, the webhook receiver down, roles SIGKILLed, SIGTERM.

After recovery, every published reading is stored exactly once, every alert event is delivered to
the receiver at least once, no alert is duplicated. Roles run as real processes against throwaway
servers; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.api.main import create_app
from app.core.db import make_engine
from app.core.migrate import upgrade
from app.core.settings import Settings
from app.embedded import EmbeddedBroker, EmbeddedPostgres
from tests.conftest import ADMIN_KEY, truncate_all
from tests.e2e.fault_support import Plan, Publisher, Receiver, Role, register_world
from tests.e2e.ingest_support import forget_session

pytestmark = pytest.mark.timeout(90)
LOGGER = "FAULT-L1"
FLOWING = 50  # readings stored before a fault: the stream is under way when it lands


@dataclass
class Servers:
    postgres: EmbeddedPostgres
    broker: EmbeddedBroker
    database_url: str
    mqtt_url: str
    base: Path


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """A PostgreSQL and a mosquitto of our own, to stop, crash and restart."""
    base = tmp_path_factory.mktemp("faults")
    postgres, broker = EmbeddedPostgres(base / "pg", throwaway=True), EmbeddedBroker(base / "mqtt")
    database_url, mqtt_url = postgres.start(), broker.start()
    try:
        upgrade(postgres.owner_url, service_url=database_url)  # as in production
        yield Servers(postgres, broker, database_url, mqtt_url, base)
    finally:
        broker.stop()
        postgres.destroy()


@dataclass
class Run:
    servers: Servers
    settings: Settings
    engine: AsyncEngine
    receiver: Receiver
    plan: Plan
    tag: str = ""
    roles: dict[str, Role] = field(default_factory=dict)
    shipment_id: str = ""

    def topic(self) -> str:
        return f"{self.settings.topic_prefix}/loggers/{LOGGER}/telemetry"

    def start(self, *names: str) -> None:
        for name in names:
            role = self.roles.setdefault(name, Role(
                name, self.settings, self.servers.base / f"fault-{self.tag}-{name}.log"))
            role.start()
        if "ingest" in names:  # its session must exist before anything is published
            self.roles["ingest"].wait_for("ingest.mqtt: subscribed")

    async def publish(self, indexes: range, *, per_second: float = 400.0) -> None:
        """Publish readings (QoS 1, resuming after broker restarts), paced, from a thread."""
        def send() -> None:
            publisher = Publisher(self.settings.mqtt_url or "", client_id=f"pub-{self.tag}")
            try:
                started = time.monotonic()
                for n, i in enumerate(indexes):
                    publisher.publish(self.topic(), self.plan.payload(i))
                    ahead = n / per_second - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
            finally:
                publisher.close()

        await asyncio.to_thread(send)

    async def stored(self) -> int:
        return await self.scalar("SELECT count(*) FROM readings WHERE logger_id = :lg", lg=LOGGER)

    async def scalar(self, sql: str, **params: object) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(text(sql), params)).scalar_one())

    async def state(self) -> str:
        """Where the pipeline stands (for a failure message)."""
        counts = {}
        for table in ("readings", "ingest_rejections", "alerts", "alert_events", "webhook_deliveries"):
            counts[table] = await self.scalar(f"SELECT count(*) FROM {table}")
        alive = {name: role.alive() for name, role in self.roles.items()}
        async with self.engine.connect() as conn:
            activity = (await conn.execute(text(
                "SELECT application_name, state, wait_event_type, wait_event, left(query, 80) "
                "FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"))).all()
        return (f"{counts}, alive {alive}, received {len(self.receiver.ids())}, "
                f"sessions {[tuple(a) for a in activity]}")

    def logs(self) -> str:
        return "\n".join(f"===== {r.name}\n{r.log()}" for r in self.roles.values())


@pytest.fixture
async def run(servers: Servers) -> AsyncIterator[Run]:
    tag = secrets.token_hex(3)
    settings = Settings(
        database_url=servers.database_url, mqtt_url=servers.mqtt_url, admin_api_key=ADMIN_KEY,
        topic_prefix=f"fault-{tag}/v1", ingest_group=f"fault-{tag}",
        ingest_client_id=f"fault-ingest-{tag}", evaluator_period_s=1.0,
        webhook_allow_private=True, data_dir=servers.base,
    )
    engine = make_engine(servers.database_url, pool_size=2)
    cleaner = make_engine(servers.postgres.superuser_url, pool_size=1)
    try:
        await truncate_all(cleaner)
    finally:
        await cleaner.dispose()
    receiver = Receiver()
    receiver.start()
    plan = Plan(start=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
    current = Run(servers, settings, engine, receiver, plan, tag=tag)
    app = create_app(settings, engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as client:
        current.shipment_id = await register_world(client, LOGGER, plan, receiver.url)
    try:
        yield current
    finally:
        for role in current.roles.values():
            if role.alive():
                role.kill()
        receiver.stop()
        await engine.dispose()
        await asyncio.to_thread(forget_session, servers.mqtt_url, settings.ingest_client_id or "")


async def eventually(run: Run, check: object, what: str, within_s: float = 45.0) -> None:
    deadline = time.monotonic() + within_s
    while True:
        try:
            if await check():  # type: ignore[operator]
                return
        except OSError:  # the database is still coming back
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what} ({await run.state()})\n{run.logs()}")
        await asyncio.sleep(0.25)


async def assert_recovered(run: Run) -> None:
    """Stored once, evaluated exactly as without the fault, every alert event delivered."""
    n, plan = run.plan.count, run.plan

    async def all_stored() -> bool:
        return await run.stored() >= n

    await eventually(run, all_stored, f"{n} readings stored")
    assert await run.stored() == n
    assert await run.scalar("SELECT count(*) FROM ingest_rejections") == 0

    last_ts = plan.start + timedelta(seconds=5 * (n - 1))

    async def evaluated() -> bool:
        return await run.scalar(
            "SELECT count(*) FROM shipment_state WHERE evaluated_until >= :ts", ts=last_ts) == 1

    await eventually(run, evaluated, "the whole record evaluated")
    # The excursions are exactly the plan's (device time), found once each.
    async with run.engine.connect() as conn:
        found = (await conn.execute(text(
            "SELECT start, \"end\" FROM excursions WHERE kind = 'temperature_high' ORDER BY start"
        ))).all()
    assert [tuple(r) for r in found] == [
        (plan.start + timedelta(seconds=5 * r.start), plan.start + timedelta(seconds=5 * r.stop))
        for r in plan.excursions]
    # No alert duplicated: at most one per episode, never two of a kind at once, one `opened` each.
    alerts = await run.scalar("SELECT count(*) FROM alerts WHERE kind = 'temperature_high'")
    assert 1 <= alerts <= len(plan.excursions)
    assert await run.scalar(
        "SELECT count(*) FROM (SELECT alert_id FROM alert_events WHERE type = 'opened' "
        "GROUP BY alert_id HAVING count(*) > 1) d") == 0
    assert await run.scalar(
        "SELECT count(*) FROM alerts a JOIN alerts b ON a.shipment_id = b.shipment_id "
        "AND a.kind = b.kind AND a.id < b.id AND a.condition_since < coalesce(b.resolved_at, "
        "'infinity') AND b.condition_since < coalesce(a.resolved_at, 'infinity')") == 0

    # Every event reached the receiver at least once (the receiver's word, not the outbox's: a
    # delivery whose outcome could not be recorded is sent again later, which is allowed).
    async def delivered() -> bool:
        events = await run.scalar("SELECT count(*) FROM alert_events")
        async with run.engine.connect() as conn:
            queued = set((await conn.execute(text(
                "SELECT d.webhook_id FROM webhook_deliveries d JOIN alert_events e "
                "ON e.id = d.alert_event_id"))).scalars())
        return events >= 1 and len(queued) == events and queued <= run.receiver.ids()

    await eventually(run, delivered, "every alert event received by the webhook endpoint")


async def flowing(run: Run, at_least: int = FLOWING) -> int:
    """Wait until `at_least` readings are stored: the fault then lands on a stream under way."""
    async def enough() -> bool:
        return await run.stored() >= at_least

    await eventually(run, enough, f"{at_least} readings stored")
    return await run.stored()


async def test_postgres_restarted_while_ingest_alerts_and_delivery_run(
    run: Run, servers: Servers
) -> None:
    first, rest = run.plan.halves
    run.start("ingest", "alerts", "delivery")
    publishing = asyncio.create_task(run.publish(first, per_second=150))
    before = await flowing(run)
    await asyncio.to_thread(servers.postgres.stop, "immediate")  # a crash: WAL recovery on start
    await publishing
    await run.publish(rest, per_second=150)  # while the database is down
    await asyncio.to_thread(run.roles["ingest"].wait_for, "batch write failed")  # it hit the outage
    await asyncio.to_thread(servers.postgres.start)
    assert FLOWING <= before < run.plan.count  # stored before the crash, the rest only after
    await assert_recovered(run)
    assert all(role.alive() for role in run.roles.values()), run.logs()


async def test_broker_restarted_while_loggers_publish(run: Run, servers: Servers) -> None:
    # A plain persistent subscription: mosquitto (2.0) does not persist *shared* subscriptions,
    # so messages published after its restart and before the workers re-subscribe are dropped.
    # Scaling out with COLDCHAIN_INGEST_GROUP needs a broker that keeps shared subscriptions.
    run.settings = run.settings.model_copy(update={"ingest_group": ""})
    first, rest = run.plan.halves
    run.start("ingest", "alerts", "delivery")
    publishing = asyncio.create_task(run.publish(first, per_second=150))
    await flowing(run)
    await asyncio.to_thread(servers.broker.stop)  # persists sessions and queued messages
    await asyncio.to_thread(run.roles["ingest"].wait_for, "disconnected from the MQTT broker")
    at_stop = await run.stored()
    await asyncio.to_thread(servers.broker.start)
    await publishing  # the publisher rode out the restart
    await run.publish(rest, per_second=150)
    assert FLOWING <= at_stop < run.plan.count
    await assert_recovered(run)
    assert all(role.alive() for role in run.roles.values()), run.logs()


async def test_webhook_receiver_down_for_a_while(run: Run) -> None:
    first, rest = run.plan.halves
    run.start("ingest", "alerts", "delivery")
    await run.publish(first)

    async def delivered_some() -> bool:
        return len(run.receiver.ids()) >= 1

    await eventually(run, delivered_some, "the first excursion's webhook received")
    run.receiver.stop()  # connection refused until it comes back
    received_before = run.receiver.ids()
    await run.publish(rest)  # the second excursion: its events queue up meanwhile

    async def failed_attempts() -> bool:
        return await run.scalar("SELECT count(*) FROM webhook_attempts WHERE status_code IS NULL") > 0

    await eventually(run, failed_attempts, "attempts failing against the unplugged receiver")
    run.receiver.start()
    await assert_recovered(run)
    assert received_before < run.receiver.ids()  # more arrived after it came back


async def test_ingest_and_alerts_killed_with_sigkill(run: Run) -> None:
    first, rest = run.plan.halves
    run.start("ingest", "alerts", "delivery")
    publishing = asyncio.create_task(run.publish(first, per_second=150))
    await flowing(run)
    run.roles["ingest"].kill()
    at_kill = await run.stored()  # nothing commits after SIGKILL
    run.start("ingest")
    await publishing

    async def delivered() -> bool:  # the first excursion's alert opened and went out
        return await run.scalar(
            "SELECT count(*) FILTER (WHERE state = 'delivered') = count(*) AND count(*) >= 1 "
            "FROM webhook_deliveries")

    # Between attempts: a delivery killed after its POST, before recording it, is sent again only
    # when its lease runs out (230 s here), and holds up its alert's later events until then.
    await eventually(run, delivered, "the first excursion's alert delivered")
    run.roles["alerts"].kill()
    run.roles["delivery"].kill()
    events_at_kill = await run.scalar("SELECT count(*) FROM alert_events")
    run.start("alerts", "delivery")
    await run.publish(rest, per_second=150)  # the second excursion comes after the kill
    assert FLOWING <= at_kill < run.plan.count
    await assert_recovered(run)
    assert await run.scalar("SELECT count(*) FROM alert_events") > events_at_kill


async def test_sigterm_drains_in_flight_batches_and_exits_cleanly(run: Run) -> None:
    first, rest = run.plan.halves
    run.start("ingest", "alerts", "delivery")
    publishing = asyncio.create_task(run.publish(first, per_second=200))
    await flowing(run)
    # Role.terminate's own bound (20 s) is the hang check: how long a drain takes is no test's
    # business under a shared machine's load.
    code, _ = await asyncio.to_thread(run.roles["ingest"].terminate)
    assert code == 0, run.roles["ingest"].log()
    assert "ingest worker stopped" in run.roles["ingest"].log()
    stored_at_stop = await run.stored()
    assert FLOWING <= stored_at_stop < run.plan.count
    run.start("ingest")
    await publishing
    await run.publish(rest, per_second=200)
    await assert_recovered(run)
    for name in ("ingest", "alerts", "delivery"):
        code, _ = await asyncio.to_thread(run.roles[name].terminate)
        assert code == 0, (name, code, run.roles[name].log())
