"""Ingest throughput: the worker against a bare yardstick and a naive baseline, in one run.

    python benchmarks/ingest.py --messages 100000 --loggers 10
    python benchmarks/ingest.py --messages 100000 --readings-per-message 100   # store-and-forward
    python benchmarks/ingest.py --messages 100000 --prefill 10000000 --contenders worker

For each contender a fresh subscriber process is started, then a publisher process feeds
`mosquitto_pub -l -q 1` (one per logger, ≤ 50 k lines each) with single-reading messages whose
`ts` is the moment they are written. Reported: sustained readings/s from the first publish to the
last commit, p50/p99 publish→commit latency, CPU per process (subscriber, its PostgreSQL backend,
broker, publishers) and the subscriber's resident memory over the run.

Contenders: `worker` (ingest.worker: validation, dedup, shipment links, raw store, hand-off),
`worker-paho` (the same worker on paho's supported receive path: on_message, client.ack per
message; issue 13 item 8), `yardstick` (stock paho + asyncpg COPY into a bare table, ack after
commit) and `naive` (one INSERT and commit per message). `--repeat N` runs the contenders N times,
interleaved (the order turned each round), and reports each one's median and the ratios of the
medians:

    python benchmarks/ingest.py --contenders worker,worker-paho --repeat 5

Uses DATABASE_URL's server (a superuser's URL: a fresh database, dropped after) or, unset, a
throwaway embedded PostgreSQL (benchmarks/scratch.py), and a throwaway mosquitto (`--mqtt-url` to
use another broker; it needs room for the backlog: max_queued_messages, see README "Broker
settings").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.append(str(Path(__file__).resolve().parent))  # after the project: benchmarks/ingest.py

import asyncpg  # noqa: E402
import psutil  # noqa: E402
from scratch import create_database, drop_database, server  # noqa: E402

from app.core.migrate import upgrade  # noqa: E402
from app.embedded import EmbeddedBroker  # noqa: E402

ROLES = Path(__file__).resolve().parent / "ingest_roles.py"
PREFILL = """
INSERT INTO readings (logger_id, ts, temp_c, seq, received_at, payload_sha256)
SELECT 'PREFILL-' || (g % 1000), date_trunc('month', now()) + (g / 1000) * interval '1 second',
       5 + (g % 50) / 10.0, g / 1000, now(), sha256(g::text::bytea)
FROM generate_series($1::bigint, $2::bigint - 1) g
"""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=100_000, help="messages per contender")
    p.add_argument("--readings-per-message", type=int, default=1)
    p.add_argument("--loggers", type=int, default=10)
    p.add_argument("--rate", type=float, default=0, help="offered messages/s (0: as fast as possible)")
    p.add_argument("--contenders", default="yardstick,worker,naive")
    p.add_argument("--workers", type=int, default=1, help="worker processes in one shared group")
    p.add_argument("--repeat", type=int, default=1, help="rounds of all contenders; medians reported")
    p.add_argument("--naive-messages", type=int, default=10_000)
    p.add_argument("--prefill", type=int, default=0, help="readings already in the table")
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    p.add_argument("--mqtt-url", default=None)
    p.add_argument("--timeout", type=float, default=600)
    return p.parse_args()


async def prepare_database(admin_url: str, loggers: list[str], prefill: int) -> str:
    url = await create_database(admin_url)
    await asyncio.to_thread(upgrade, url)
    conn = await asyncpg.connect(url)
    await conn.executemany("INSERT INTO loggers (id, reporting_interval_s, status, seq_gaps)"
                           " VALUES ($1, 60, 'unknown', 0)", [(lg,) for lg in loggers])
    step = 1_000_000
    for start in range(0, prefill, step):
        await conn.execute(PREFILL, start, min(start + step, prefill))
        print(f"  prefill {min(start + step, prefill):,} rows", flush=True)
    if prefill:
        await conn.execute("VACUUM ANALYZE readings")
    await conn.close()
    return url


def cpu_of(proc: psutil.Process | None) -> float:
    if proc is None:
        return 0.0
    times = proc.cpu_times()
    return times.user + times.system


async def stored(db_url: str, loggers: list[str]) -> int:
    conn = await asyncpg.connect(db_url)
    try:
        return int(await conn.fetchval(
            "SELECT count(*) FROM readings WHERE logger_id = ANY($1)", loggers))
    finally:
        await conn.close()


def logger_ids(contender: str, round_: int, count: int) -> list[str]:
    """Logger ids of a contender in a round: B + the initials of its name + round + a number."""
    tag = "".join(part[0] for part in contender.split("-"))
    return [f"B{tag}{round_}x{i}" for i in range(count)]


def run_contender(name: str, args: argparse.Namespace, db_url: str, mqtt_url: str,
                  broker: psutil.Process | None, round_: int = 0) -> dict[str, Any]:
    messages = args.naive_messages if name == "naive" else args.messages
    prefix = f"bench-{name}-{secrets.token_hex(3)}/v1"
    common = {"database_url": db_url, "mqtt_url": mqtt_url, "prefix": prefix}
    expect = messages * args.readings_per_message
    worker = name.startswith("worker")
    several = worker and args.workers > 1
    subs = [subprocess.Popen(
        [sys.executable, str(ROLES), name,
         json.dumps({**common, "expect": 0 if several else expect, "index": i})],
        stdout=subprocess.PIPE, text=True) for i in range(args.workers if worker else 1)]
    for sub in subs:
        assert sub.stdout is not None
        assert sub.stdout.readline().strip() == "READY", f"{name} did not start"
    rss: list[float] = []
    sampling = threading.Event()

    def sample() -> None:
        procs = [psutil.Process(sub.pid) for sub in subs]
        while not sampling.wait(0.5):
            try:
                if all(proc.status() != psutil.STATUS_ZOMBIE for proc in procs):
                    rss.append(sum(proc.memory_info().rss for proc in procs) / 2**20)
            except psutil.Error:
                return

    threading.Thread(target=sample, daemon=True).start()
    broker_cpu = cpu_of(broker)
    loggers = logger_ids(name, round_, args.loggers)
    pub = subprocess.run(
        [sys.executable, str(ROLES), "publish", json.dumps({
            **common, "messages": messages, "loggers": loggers, "rate": args.rate,
            "readings_per_message": args.readings_per_message})],
        capture_output=True, text=True, timeout=args.timeout, check=True)
    published = json.loads(pub.stdout.strip().splitlines()[-1])
    if several:
        deadline = time.monotonic() + args.timeout
        while asyncio.run(stored(db_url, loggers)) < expect and time.monotonic() < deadline:
            time.sleep(0.2)
        for sub in subs:
            sub.terminate()
    reports = [json.loads(sub.stdout.readline()) for sub in subs]  # type: ignore[union-attr]
    for sub in subs:
        sub.wait(timeout=args.timeout)
    sampling.set()
    result = {
        "count": sum(r["count"] for r in reports), "last_commit": max(r["last_commit"] for r in reports),
        "latencies": [x for r in reports for x in r["latencies"]],
        "cpu_user": sum(r["cpu_user"] for r in reports), "cpu_sys": sum(r["cpu_sys"] for r in reports),
        "backend_cpu": sum(r["backend_cpu"] for r in reports),
    }
    lat = sorted(result.pop("latencies")) or [0.0]
    span = result["last_commit"] - published["start"]
    label = f"{name}×{len(subs)}" if len(subs) > 1 else name
    return {
        "contender": label, "readings": result["count"], "seconds": span,
        "rate": result["count"] / span, "publish_seconds": published["end"] - published["start"],
        "p50_ms": 1000 * statistics.median(lat), "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))],
        "cpu_subscriber": result["cpu_user"] + result["cpu_sys"], "cpu_pg_backend": result["backend_cpu"],
        "cpu_broker": cpu_of(broker) - broker_cpu, "cpu_feeder": published["feeder_cpu"],
        "cpu_mosquitto_pub": published["mosquitto_pub_cpu"],
        "rss_mb": (min(rss[len(rss) // 10:] or [0]), max(rss or [0])),
    }


RATIOS = (("worker", "yardstick", ".2f"), ("worker-paho", "worker", ".2f"), ("worker", "naive", ".1f"))


def report(rounds: list[list[dict[str, Any]]], args: argparse.Namespace) -> None:
    head = (f"{'contender':<15} {'readings':>9} {'seconds':>8} {'readings/s':>11} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'cpu sub':>8} {'cpu pg':>7} {'cpu mqtt':>8} {'cpu pub':>8} {'rss MB':>11}")
    print("\n" + head + "\n" + "-" * len(head))
    for i, rows in enumerate(rounds):
        for r in rows:
            label = r["contender"] + (f" #{i + 1}" if len(rounds) > 1 else "")
            print(f"{label:<15} {r['readings']:>9,} {r['seconds']:>8.2f} {r['rate']:>11,.0f} "
                  f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['cpu_subscriber']:>8.2f} "
                  f"{r['cpu_pg_backend']:>7.2f} {r['cpu_broker']:>8.2f} "
                  f"{r['cpu_feeder'] + r['cpu_mosquitto_pub']:>8.2f} "
                  f"{r['rss_mb'][0]:>5.0f}-{r['rss_mb'][1]:<5.0f}")
    rates: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for rows in rounds:
        for r in rows:
            rates.setdefault(r["contender"], []).append(r["rate"])
            cpu.setdefault(r["contender"], []).append(r["cpu_subscriber"] / max(r["readings"], 1))
    if len(rounds) > 1:
        print(f"\nmedians of {len(rounds)} rounds:")
        for name, values in rates.items():
            print(f"  {name:<15} {statistics.median(values):>9,.0f} readings/s "
                  f"(range {min(values):,.0f}–{max(values):,.0f}); subscriber CPU "
                  f"{1e6 * statistics.median(cpu[name]):.1f} µs per reading")
    print()
    for a, b, fmt in RATIOS:
        if a in rates and b in rates:
            per_round = [x / y for x, y in zip(rates[a], rates[b], strict=True)]
            spread = (f" (per round {min(per_round):{fmt}}–{max(per_round):{fmt}})"
                      if len(per_round) > 1 else "")
            ratio = statistics.median(rates[a]) / statistics.median(rates[b])
            print(f"{a} / {b} = {ratio:{fmt}}{spread}")
    print(f"prefilled rows: {args.prefill:,}; readings per message: {args.readings_per_message}; "
          f"loggers: {args.loggers}; offered rate: {args.rate or 'unthrottled'}")
    print("cpu pub = python feeder + mosquitto_pub processes; cpu pg = the subscriber's backend")
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))


def main() -> int:
    args = parse_args()
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ccbench-")))
        admin_url = stack.enter_context(server(args.database_url))
        broker_proc = None
        mqtt_url = args.mqtt_url
        if not mqtt_url:
            broker = EmbeddedBroker(tmp / "mqtt")
            mqtt_url = broker.start()
            stack.callback(broker.stop)
            assert broker.process is not None
            broker_proc = psutil.Process(broker.process.pid)
        loggers = [lg for r in range(args.repeat) for c in contenders
                   for lg in logger_ids(c, r, args.loggers)]
        started = time.time()
        db_url = asyncio.run(prepare_database(admin_url, loggers, args.prefill))
        print(f"database ready in {time.time() - started:.1f}s", flush=True)
        rounds: list[list[dict[str, Any]]] = []
        try:
            for r in range(args.repeat):
                order = contenders if r % 2 == 0 else contenders[::-1]  # neither always goes first
                rows = {c: run_contender(c, args, db_url, mqtt_url, broker_proc, r) for c in order}
                rounds.append([rows[c] for c in contenders])
        finally:
            asyncio.run(drop_database(admin_url, db_url))
        report(rounds, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
