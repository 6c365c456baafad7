"""Wake-up latency at rest: how soon a NOTIFY-driven worker acts on a commit, against a bare
LISTEN/NOTIFY round trip measured in the same run (what the tests no longer assert).

    python benchmarks/wakeups.py [--probes 30] [--json]

Uses DATABASE_URL (a superuser's; default: a throwaway embedded PostgreSQL): a fresh database is
created, migrated and dropped. Each case runs `--probes` times, one probe at a time, idle between:
- notify: a bare `pg_notify` → the LISTEN callback of another connection (the floor);
- evaluation: a breaching reading written by ingest's writer (readings and hand-off in one
  commit) → its alert row, `alerts.worker.serve` running in-process;
- webhook: an alert event committed with its outbox row → the request at a local receiver,
  the delivery loop running in-process.
Reported: p50/p95/max in ms, and each p50 as a multiple of the notify p50. Without NOTIFY, the
1 s fallback polls alone would give ≈ 500 ms at p50.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.append(str(Path(__file__).resolve().parent))  # after the project: benchmarks/ingest.py

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import orjson  # noqa: E402
from scratch import create_database, drop_database, server  # noqa: E402
from sqlalchemy import text  # noqa: E402

from alerts import worker  # noqa: E402
from alerts.rules import EvalConfig  # noqa: E402
from alerts.webhooks.delivery import run_delivery  # noqa: E402
from alerts.webhooks.outbox import enqueue_deliveries  # noqa: E402
from app.api.main import create_app  # noqa: E402
from app.core.db import make_engine, make_sessionmaker, plain_url  # noqa: E402
from app.core.migrate import upgrade  # noqa: E402
from app.core.models import Alert, AlertEvent  # noqa: E402
from app.core.settings import Settings  # noqa: E402
from ingest.batch import Assembler, Delivery  # noqa: E402
from ingest.writer import Writer  # noqa: E402
from simulators.receiver import Receiver  # noqa: E402

ADMIN_KEY = "bench-admin-" + secrets.token_hex(16)
PREFIX = "bench"
PACKED = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {"p50_ms": round(statistics.median(ms), 1),
            "p95_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.95))], 1),
            "max_ms": round(ms[-1], 1)}


async def notify_case(url: str, probes: int) -> list[float]:
    listener, sender = await asyncpg.connect(url), await asyncpg.connect(url)
    heard = asyncio.Event()
    await listener.add_listener("bench_wakeup", lambda *_: heard.set())
    out = []
    try:
        for _ in range(probes):
            heard.clear()
            started = time.monotonic()
            await sender.execute("SELECT pg_notify('bench_wakeup', '')")
            await asyncio.wait_for(heard.wait(), 10)
            out.append(time.monotonic() - started)
            await asyncio.sleep(0.05)
    finally:
        await listener.close()
        await sender.close()
    return out


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> str:
    response = await client.post(f"/api/v1{path}", json=body)
    response.raise_for_status()
    return str(response.json()["id"])


async def world(client: httpx.AsyncClient, probes: int, receiver: Receiver) -> list[str]:
    """Shipments B-0…, one logger each, a 2–8 °C product without alarm delay, one webhook."""
    origin = await post(client, "/sites", {"name": "Leiden", "country": "NL"})
    dest = await post(client, "/sites", {"name": "Boston", "country": "US"})
    product = await post(client, "/products", {
        "name": "CAR-T", "temp_min_c": 2.0, "temp_max_c": 8.0, "alarm_delay_s": 0,
        "stability_budget_s": 36000})
    packaging = await post(client, "/packaging", {"name": "Passive", "qualified_hold_h": 96})
    lane = await post(client, "/lanes", {
        "name": "AMS-BOS", "origin_site_id": origin, "destination_site_id": dest,
        "expected_transit_h": 30, "max_transit_h": 48, "corridor_km": 100, "waypoints": []})
    hook = await client.post("/api/v1/webhooks", json={"url": receiver.url()})
    hook.raise_for_status()
    receiver.secrets.append(hook.json()["secret"])  # it counts correctly signed requests only
    shipments = []
    for i in range(probes):
        await post(client, "/loggers", {"id": f"B-{i}", "reporting_interval_s": 300})
        shipments.append(await post(client, "/shipments", {
            "reference": f"B-{i}", "lane_id": lane, "product_id": product,
            "packaging_id": packaging, "logger_ids": [f"B-{i}"], "packed_at": PACKED.isoformat(),
            "departed_at": PACKED.isoformat()}))
    return shipments


async def evaluation_case(url: str, settings: Settings, shipments: list[str]) -> list[float]:
    engine = make_engine(url, pool_size=4)
    stop = asyncio.Event()
    serving = asyncio.create_task(worker.serve(make_sessionmaker(engine), url, EvalConfig(), stop))
    writer, watcher = Writer(url, PREFIX), await asyncpg.connect(url)
    out = []
    try:
        await asyncio.sleep(2.0)  # started and idle: a benchmark's settling, not a test's sync
        for i, shipment in enumerate(shipments):
            body = orjson.dumps({"readings": [
                {"ts": (PACKED + timedelta(minutes=m)).isoformat(), "temp_c": t}
                for m, t in ((1, 5.0), (2, 12.0))]})
            delivery = Delivery(f"{PREFIX}/loggers/B-{i}/telemetry".encode(), body, i + 1, 0,
                                time.time())
            started = time.monotonic()
            await writer.write(Assembler(PREFIX).assemble([delivery]))
            while not await watcher.fetchval("SELECT count(*) FROM alerts WHERE shipment_id = $1",
                                             uuid.UUID(shipment)):
                if time.monotonic() - started > 30:
                    raise TimeoutError(f"no alert for {shipment}")
                await asyncio.sleep(0.002)
            out.append(time.monotonic() - started)
            await asyncio.sleep(0.3)  # the webhook's delivery and the worker back at rest
    finally:
        stop.set()
        await asyncio.wait_for(serving, 30)
        await writer.close()
        await watcher.close()
        await engine.dispose()
    return out


async def webhook_case(url: str, settings: Settings, receiver: Receiver,
                       shipments: list[str]) -> list[float]:
    engine = make_engine(url, pool_size=2)
    maker = make_sessionmaker(engine)
    stop = asyncio.Event()
    delivering = asyncio.create_task(run_delivery(settings, stop))
    out = []
    try:
        async with engine.connect() as conn:  # the evaluation case's events go out first
            while await conn.scalar(text(
                    "SELECT count(*) FROM webhook_deliveries WHERE state <> 'delivered'")):
                await conn.commit()
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # and the loops back at rest
        for shipment in shipments:
            async with maker() as session:
                alert = Alert(shipment_id=uuid.UUID(shipment), kind="shock", severity="warning",
                              state="resolved", opened_at=PACKED, condition_since=PACKED,
                              retroactive=False)
                session.add(alert)
                await session.flush()
                event = AlertEvent(alert_id=alert.id, type="opened", actor="engine", data={})
                session.add(event)
                await enqueue_deliveries(session, event)
                seen = len(receiver.delivered)
                started = time.monotonic()
                await session.commit()
            await receiver.wait_delivered(seen + 1, within_s=30)
            out.append(receiver.requests[-1].at - started)
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(delivering, 30)
        await engine.dispose()
    return out


async def run(args: argparse.Namespace, admin: str) -> dict[str, Any]:
    url = await create_database(admin, "coldchain_bench_wake")
    try:
        await asyncio.to_thread(upgrade, url)
        settings = Settings(database_url=url, admin_api_key=ADMIN_KEY, webhook_allow_private=True,
                            topic_prefix=PREFIX)
        async with Receiver() as receiver:
            api_engine = make_engine(url, pool_size=2)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(settings, engine=api_engine)),
                base_url="http://bench", headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            ) as client:
                shipments = await world(client, args.probes, receiver)
            await api_engine.dispose()
            dsn = plain_url(url)
            cases = {"notify": await notify_case(dsn, args.probes),
                     "evaluation": await evaluation_case(dsn, settings, shipments)}
            cases["webhook"] = await webhook_case(url, settings, receiver, shipments)
        floor = statistics.median(cases["notify"])
        return {"probes": args.probes, "cases": {
            case: {**summary(values), "x_notify": round(statistics.median(values) / floor, 1)}
            for case, values in cases.items()}}
    finally:
        await drop_database(admin, url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.probes <= 500:
        parser.error("keep benchmark runs bounded (1…500 probes)")
    with server() as admin:
        report = asyncio.run(run(args, admin))
    report["command"] = "python benchmarks/wakeups.py " + " ".join(sys.argv[1:])
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"command: {report['command']}")
    print(f"{'case':<12}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'× notify':>10}")
    for case, r in report["cases"].items():
        print(f"{case:<12}{r['p50_ms']:>9}{r['p95_ms']:>9}{r['max_ms']:>9}{r['x_notify']:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
