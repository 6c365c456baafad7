"""Alert latency: a reading published over MQTT → its alert visible in the database, while a
background load of in-range telemetry flows, with `coldchain ingest` and `coldchain alerts`
running as their own processes (as deployed).

    python benchmarks/evaluation_latency.py [--rate 2000] [--loggers 400] [--probes 40]

Uses DATABASE_URL and MQTT_URL (both required: the machine's servers); a fresh database is
created, migrated and dropped. The load publisher is a separate process (paho, QoS 1). Each
probe publishes one out-of-range reading for its own shipment (alarm delay 0) and polls for
the alert row; the latency is split into ingest (published → reading stored) and evaluation
(stored → alert). BENCH_LOG_DIR=dir keeps the roles' logs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg  # noqa: E402
import orjson  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from evaluation import IDS, SETUP, add_shipments  # noqa: E402

from app.core.migrate import upgrade  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PROBE_FIRST = 100_000


def _client(url: str, name: str) -> mqtt.Client:
    parts = urlsplit(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{name}-{secrets.token_hex(3)}")
    client.max_inflight_messages_set(100)
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, 30)
    client.loop_start()
    return client


def load(url: str, prefix: str, loggers: int, rate: float, seconds: float) -> None:
    """The background: `rate` in-range readings per second, round-robin over the loggers."""
    client = _client(url, "load")
    started = time.monotonic()
    sent = 0
    pending = []
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            logger = 1 + sent % loggers
            body = {"ts": datetime.now(UTC).isoformat(), "temp_c": 5.0 + (sent % 20) / 10}
            pending.append(client.publish(f"{prefix}/loggers/B-{logger}/telemetry",
                                          orjson.dumps(body), qos=1))
            sent += 1
            if len(pending) > 200:  # throttle on acknowledgements (PITFALLS: 16-bit mids)
                pending[0].wait_for_publish(10)
                pending = [p for p in pending if not p.is_published()]
        time.sleep(0.002)
    for p in pending:
        p.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()
    print(f"load: {sent} readings in {time.monotonic() - started:.1f} s", file=sys.stderr)


def _start_role(role: str, env: dict[str, str], logs: str | None) -> subprocess.Popen[bytes]:
    sink = open(Path(logs) / f"{role}.log", "wb") if logs else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen([sys.executable, "-m", "app.cli", role], env=env, cwd=ROOT,
                            stderr=sink)


async def run(args: argparse.Namespace) -> dict[str, float]:
    admin, mqtt_url = os.environ["DATABASE_URL"], os.environ["MQTT_URL"]
    name = f"coldchain_bench_lat_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f"CREATE DATABASE {name}")
    await conn.close()
    url = urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
    prefix = f"bench-{secrets.token_hex(3)}/v1"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        await asyncio.to_thread(upgrade, url)
        conn = await asyncpg.connect(url)
        await conn.execute(SETUP)
        start = datetime.now(UTC) - timedelta(minutes=10)
        await add_shipments(conn, 1, args.loggers, start, 1)
        await add_shipments(conn, PROBE_FIRST, args.probes, start, 60)
        await conn.execute(  # probes: a product alarming on the first reading out of range
            "INSERT INTO products (id, name, temp_min_c, temp_max_c, alarm_delay_s, "
            "stability_budget_s, light_sensitive) VALUES ($1, 'probe', 2, 8, 0, 36000, true)",
            IDS["product"][:-1] + "9")
        await conn.execute("UPDATE shipments SET product_id = $1 WHERE reference >= $2",
                           IDS["product"][:-1] + "9", f"B-{PROBE_FIRST}")
        env = {**os.environ, "DATABASE_URL": url, "MQTT_URL": mqtt_url,
               "COLDCHAIN_TOPIC_PREFIX": prefix, "COLDCHAIN_INGEST_GROUP": f"bench-{prefix[6:12]}"}
        logs = os.environ.get("BENCH_LOG_DIR")  # the roles' logs, when asked for
        for role in ("ingest", "alerts"):
            procs.append(await asyncio.to_thread(_start_role, role, env, logs))
        await asyncio.sleep(4)  # roles up and subscribed
        duration = args.warmup + args.probes * (args.gap + 1.0) + 10  # outlasts the probes
        procs.append(await asyncio.to_thread(
            subprocess.Popen, [sys.executable, __file__, "--load", mqtt_url, prefix,
                               str(args.loggers), str(args.rate), str(duration)], cwd=ROOT))
        await asyncio.sleep(args.warmup)
        probe = _client(mqtt_url, "probe")
        latencies: list[float] = []
        evaluation: list[float] = []
        window_start = datetime.now(UTC)
        for i in range(args.probes):
            sid = await conn.fetchval("SELECT id FROM shipments WHERE reference = $1",
                                      f"B-{PROBE_FIRST + i}")
            body = {"ts": datetime.now(UTC).isoformat(), "temp_c": 12.0}
            sent = time.perf_counter()
            probe.publish(f"{prefix}/loggers/B-{PROBE_FIRST + i}/telemetry", orjson.dumps(body),
                          qos=1)
            stored_at = None
            while not await conn.fetchval(
                    "SELECT count(*) FROM alerts WHERE shipment_id = $1 "
                    "AND kind = 'temperature_high'", sid):
                if stored_at is None and await conn.fetchval(
                        "SELECT count(*) FROM readings WHERE shipment_id = $1", sid):
                    stored_at = time.perf_counter()
                if time.perf_counter() - sent > 30:
                    raise TimeoutError(f"probe {i}: no alert after 30 s")
                await asyncio.sleep(0.005)
            done = time.perf_counter()
            latencies.append(done - sent)
            evaluation.append(done - (stored_at or done))
            await asyncio.sleep(args.gap)
        probe.disconnect()
        window_end = datetime.now(UTC)
        stored = await conn.fetchval(
            "SELECT count(*) FROM readings WHERE received_at BETWEEN $1 AND $2",
            window_start, window_end)
        await conn.close()
        ordered = sorted(latencies)
        evals = sorted(evaluation)
        return {
            "eval_p50_ms": round(statistics.median(evals) * 1000, 1),
            "eval_p99_ms": round(evals[int(0.99 * (len(evals) - 1))] * 1000, 1),
            "probes": len(latencies),
            "background_readings_per_s": stored / (window_end - window_start).total_seconds(),
            "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
            "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1),
        }
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        conn = await asyncpg.connect(admin)
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.close()


def _cli() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        url, prefix, loggers, rate, seconds = sys.argv[2:7]
        load(url, prefix, int(loggers), float(rate), float(seconds))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--loggers", type=int, default=400)
    parser.add_argument("--probes", type=int, default=40)
    parser.add_argument("--gap", type=float, default=0.25, help="seconds between probes")
    parser.add_argument("--warmup", type=float, default=5.0)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(f"command: python benchmarks/evaluation_latency.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"alert latency (published → alert row) over {result['probes']} probes at "
          f"{result['background_readings_per_s']:.0f} background readings/s stored: "
          f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms, "
          f"max {result['max_ms']} ms; of which stored → alert (the evaluation engine): "
          f"p50 {result['eval_p50_ms']} ms, p99 {result['eval_p99_ms']} ms")


if __name__ == "__main__":
    _cli()
