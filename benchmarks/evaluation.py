"""Evaluation cost: per-reading cost with 1 k vs 1 M readings of history on a shipment, with
10 000 active shipments, and the time-driven sweep over 10 000 active shipments.

    python benchmarks/evaluation.py [--history 1000,1000000] [--shipments 10000] [--json]
    python benchmarks/evaluation.py --compare OTHER_CHECKOUT [--rounds 3] [...]

`--compare` runs this checkout's and another checkout's copy of this benchmark side by side, each
in its own process (and its own database) with the same arguments, and prints every figure's
median per side over the rounds and their ratio (this / other): a before/after comparison from
one run on a machine whose load varies.

Uses DATABASE_URL (default: a throwaway embedded PostgreSQL): a fresh database is created,
migrated, filled by INSERT … SELECT and dropped at the end. Every figure goes through the real
engine (`alerts.worker` units of work against PostgreSQL), the same code the `alerts` role runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.append(str(Path(__file__).resolve().parent))  # after the project: benchmarks/ingest.py

import asyncpg  # noqa: E402
from scratch import create_database, drop_database, server  # noqa: E402

from alerts import worker  # noqa: E402
from alerts.rules import EvalConfig  # noqa: E402
from app.core.db import make_engine, make_sessionmaker  # noqa: E402
from app.core.migrate import upgrade  # noqa: E402

T0 = datetime(2026, 6, 1, tzinfo=UTC)
IDS = {name: f"00000000-0000-0000-0000-00000000000{i}" for i, name in
       enumerate(("origin", "dest", "product", "packaging", "lane"))}
SETUP = f"""
INSERT INTO sites (id, name, country) VALUES ('{IDS["origin"]}', 'Leiden', 'NL'),
                                             ('{IDS["dest"]}', 'Boston', 'US');
INSERT INTO products (id, name, temp_min_c, temp_max_c, alarm_delay_s, stability_budget_s,
                      light_sensitive) VALUES ('{IDS["product"]}', 'CAR-T', 2, 8, 300, 36000, true);
INSERT INTO packaging (id, name, qualified_hold_h)
    VALUES ('{IDS["packaging"]}', 'Passive 96h', 96000);
INSERT INTO lanes (id, name, origin_site_id, destination_site_id, expected_transit_h,
                   max_transit_h, corridor_km)
    VALUES ('{IDS["lane"]}', 'AMS-BOS', '{IDS["origin"]}', '{IDS["dest"]}', 30, 48, 100);
INSERT INTO lane_waypoints (id, lane_id, position, name, lat, lon, radius_km, dwell_allowance_h)
    VALUES (gen_random_uuid(), '{IDS["lane"]}', 0, 'AMS', 52.31, 4.76, 5, 6),
           (gen_random_uuid(), '{IDS["lane"]}', 1, 'BOS customs', 42.36, -71.01, 5, 8);
"""
SERIES = "generate_series($1::int, $1::int + $2::int - 1) g"


async def add_shipments(conn: asyncpg.Connection, first: int, count: int, at: datetime,
                        interval_s: int) -> None:
    """Shipments B-<n> in transit since `at`, one logger B-<n> each."""
    await conn.execute(
        "INSERT INTO loggers (id, reporting_interval_s, status, seq_gaps, last_received_at) "
        f"SELECT 'B-' || g, $3, 'online', 0, $4 FROM {SERIES}", first, count, interval_s, at)
    await conn.execute(
        "INSERT INTO shipments (id, reference, lane_id, planned_lane_id, product_id, packaging_id,"
        " origin_site_id, destination_site_id, status, packed_at, departed_at, safety_margin_h) "
        f"SELECT md5('s' || g)::uuid, 'B-' || g, '{IDS['lane']}', '{IDS['lane']}', '{IDS['product']}', "
        f"'{IDS['packaging']}', '{IDS['origin']}', '{IDS['dest']}', 'in_transit', $3, $3, 24 "
        f"FROM {SERIES}", first, count, at)
    await conn.execute(
        "INSERT INTO shipment_loggers (shipment_id, logger_id, assigned_from) "
        f"SELECT md5('s' || g)::uuid, 'B-' || g, $3 FROM {SERIES}", first, count, at)


async def add_readings(conn: asyncpg.Connection, first: int, count: int, index: int, each: int,
                       start: datetime, interval_s: int, received: datetime | None) -> None:
    """Readings index…index+each−1 (at start + i × interval) of shipments first…, as ingest
    stores them: with the shipment marked dirty from the earliest new reading."""
    await conn.execute(
        "INSERT INTO readings (logger_id, ts, shipment_id, temp_c, received_at) "
        "SELECT 'B-' || g, $5::timestamptz + (i * $6::int) * interval '1 second', "
        "md5('s' || g)::uuid, 5 + 2.5 * sin(i / 500.0) "
        "+ CASE WHEN i % 5000 BETWEEN 100 AND 160 THEN 4 ELSE 0 END, "
        "coalesce($7::timestamptz, $5::timestamptz + (i * $6::int) * interval '1 second') "
        f"FROM {SERIES}, generate_series($3::int, $3::int + $4::int - 1) i",
        first, count, index, each, start, interval_s, received)
    await conn.execute(
        "INSERT INTO evaluation_queue (shipment_id, dirty_from) "
        f"SELECT md5('s' || g)::uuid, $3::timestamptz FROM {SERIES} "
        "ON CONFLICT (shipment_id) DO UPDATE "
        "SET dirty_from = LEAST(evaluation_queue.dirty_from, EXCLUDED.dirty_from)",
        first, count, start + timedelta(seconds=index * interval_s))


class Bench:
    def __init__(self, url: str, config: EvalConfig) -> None:
        self.url, self.config = url, config
        self.engine = make_engine(url, pool_size=2)
        self.maker = make_sessionmaker(self.engine)
        self.now = T0

    async def drain(self, trigger: str = "pending") -> tuple[float, int, int]:
        """Claim and evaluate until nothing is pending: (seconds, shipments, readings)."""
        started, shipments, readings = time.perf_counter(), 0, 0
        async with self.maker() as s, s.begin():
            await worker.claim(s, now=self.now, limit=100_000)
        while True:
            async with self.maker() as s, s.begin():
                if trigger == "pending":
                    r = await worker.process_pending(s, now=self.now, config=self.config)
                else:
                    r = await worker.sweep_due(s, now=self.now, config=self.config)
            shipments += len(r.evaluated)
            readings += r.stats.readings
            if not r.evaluated:
                return time.perf_counter() - started, shipments, readings


async def history_case(conn: asyncpg.Connection, bench: Bench, first: int, history: int,
                       batches: int, batch: int) -> dict[str, Any]:
    """One shipment with `history` readings (1 s apart), then batches of new ones."""
    await add_shipments(conn, first, 1, T0, 1)
    await add_readings(conn, first, 1, 0, history, T0, 1, None)
    bench.now = T0 + timedelta(seconds=history)
    initial, _, folded = await bench.drain()
    per_reading = []
    next_i = history
    for _ in range(batches):
        await add_readings(conn, first, 1, next_i, batch, T0, 1, None)
        next_i += batch
        bench.now = T0 + timedelta(seconds=next_i)
        seconds, _, n = await bench.drain()
        per_reading.append(seconds / n * 1e6)
    # Store-and-forward: readings half a second apart from the old ones, 10 min in the past.
    late_at = next_i - 600
    await add_readings(conn, first, 1, late_at, batch, T0 + timedelta(milliseconds=500), 1,
               bench.now)
    late_s, _, late_n = await bench.drain()
    return {
        "history_readings": history, "initial_evaluation_s": round(initial, 2),
        "initial_us_per_reading": round(initial / folded * 1e6, 1),
        "batch_size": batch, "batches": batches,
        "append_us_per_reading_median": round(statistics.median(per_reading), 1),
        "append_us_per_reading_p95": round(sorted(per_reading)[int(0.95 * (batches - 1))], 1),
        "late_batch_ms": round(late_s * 1000, 1), "late_batch_readings_replayed": late_n,
    }


async def fleet_case(conn: asyncpg.Connection, bench: Bench, first: int, shipments: int,
                     batches: int, batch: int) -> dict[str, Any]:
    """`shipments` active shipments with a few readings each; appends; then the sweep."""
    await add_shipments(conn, first, shipments, T0, 300)
    await add_readings(conn, first, shipments, 0, 12, T0, 300, None)
    bench.now = T0 + timedelta(hours=1)
    initial, evaluated, _ = await bench.drain()
    per_reading = []
    for k in range(batches):  # a burst of `batch` readings for one shipment after another
        await add_readings(conn, first + (k * 37) % shipments, 1, 0, batch,
                   T0 + timedelta(minutes=56), 1, None)
        seconds, _, n = await bench.drain()
        per_reading.append(seconds / n * 1e6)
    bench.now += timedelta(seconds=1)
    await conn.execute("UPDATE shipment_state SET next_check_at = $1", bench.now)
    sweep_s, swept, _ = await bench.drain("sweep")
    bench.now += timedelta(seconds=1)
    idle_started = time.perf_counter()
    await bench.drain("sweep")
    idle_ms = (time.perf_counter() - idle_started) * 1000
    # Steady state: the worker's sweep every 5 s over the next 5 minutes of (simulated) time.
    steady: list[float] = []
    for _ in range(60):
        bench.now += timedelta(seconds=5)
        seconds, _, _ = await bench.drain("sweep")
        steady.append(seconds)
    return {
        "active_shipments": shipments, "initial_evaluation_s": round(initial, 2),
        "initial_shipments_per_s": round(evaluated / initial, 1),
        "append_us_per_reading_median": round(statistics.median(per_reading), 1),
        "sweep_all_due_s": round(sweep_s, 2), "swept_shipments": swept,
        "sweep_period_s": 5.0, "sweep_nothing_due_ms": round(idle_ms, 1),
        "steady_sweep_ms_mean": round(statistics.mean(steady) * 1000, 1),
        "steady_sweep_ms_max": round(max(steady) * 1000, 1),
    }


async def main(args: argparse.Namespace, admin: str) -> dict[str, Any]:
    url = await create_database(admin, "coldchain_bench_eval")
    try:
        await asyncio.to_thread(upgrade, url)
        conn = await asyncpg.connect(url)
        await conn.execute(SETUP)
        bench = Bench(url, EvalConfig())
        results: dict[str, Any] = {"history": [], "fleet": None}
        first = 1
        for history in args.history:
            results["history"].append(
                await history_case(conn, bench, first, history, args.batches, args.batch))
            first += 1
        results["fleet"] = await fleet_case(conn, bench, 1000, args.shipments, args.batches,
                                            args.batch)
        await conn.close()
        await bench.engine.dispose()
        return results
    finally:
        await drop_database(admin, url)


def _figures(results: dict[str, Any]) -> dict[str, float]:
    """The comparable figures of one run, flat."""
    out = {}
    for h in results["history"]:
        for key in ("append_us_per_reading_median", "initial_us_per_reading", "late_batch_ms"):
            out[f"history {h['history_readings']}: {key}"] = float(h[key])
    for key in ("append_us_per_reading_median", "sweep_all_due_s", "sweep_nothing_due_ms",
                "steady_sweep_ms_mean", "steady_sweep_ms_max"):
        out[f"fleet {results['fleet']['active_shipments']}: {key}"] = float(results["fleet"][key])
    return out


def compare(other: Path, rounds: int, passed: list[str]) -> None:
    """Both checkouts at once, `rounds` times: the same load from the rest of the machine falls
    on both (they share its cores evenly), so their ratio holds where absolute figures do not."""
    scripts = {"other": other / "benchmarks" / "evaluation.py", "this": Path(__file__).resolve()}
    runs: dict[str, list[dict[str, float]]] = {"other": [], "this": []}
    for _ in range(rounds):
        procs = {side: subprocess.Popen(
            [sys.executable, str(script), *passed, "--json"], stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, cwd=script.parent.parent)
            for side, script in scripts.items()}
        for side, proc in procs.items():
            out, _ = proc.communicate()
            if proc.returncode != 0:
                raise SystemExit(f"the {side} checkout's benchmark failed ({proc.returncode})")
            runs[side].append(_figures(json.loads(out)))
    print(f"command: python benchmarks/evaluation.py --compare {other} --rounds {rounds} "
          f"{' '.join(passed)}".rstrip())
    print(f"{'figure':58} {'other':>10} {'this':>10} {'this/other':>10}")
    for key in runs["this"][0]:
        a = statistics.median(r[key] for r in runs["other"])
        b = statistics.median(r[key] for r in runs["this"])
        print(f"{key:58} {a:10.1f} {b:10.1f} {b / a if a else float('nan'):10.2f}")


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", default="1000,1000000",
                        type=lambda v: [int(x) for x in v.split(",")])
    parser.add_argument("--shipments", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--compare", type=Path, help="another checkout to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.compare is not None:
        passed = [f"--history={','.join(map(str, args.history))}", f"--shipments={args.shipments}",
                  f"--batches={args.batches}", f"--batch={args.batch}"]
        compare(args.compare.resolve(), args.rounds, passed)
        return
    with server() as admin:
        results = asyncio.run(main(args, admin))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"command: python benchmarks/evaluation.py {' '.join(sys.argv[1:])}".rstrip())
    for h in results["history"]:
        print(f"history {h['history_readings']:>9,} readings: append "
              f"{h['append_us_per_reading_median']} µs/reading (p95 "
              f"{h['append_us_per_reading_p95']}) in batches of {h['batch_size']}; "
              f"initial full evaluation {h['initial_evaluation_s']} s "
              f"({h['initial_us_per_reading']} µs/reading); late batch "
              f"{h['late_batch_ms']} ms replaying {h['late_batch_readings_replayed']} readings")
    f = results["fleet"]
    print(f"{f['active_shipments']:,} active shipments: append {f['append_us_per_reading_median']}"
          f" µs/reading; initial evaluation {f['initial_shipments_per_s']} shipments/s; sweep of "
          f"all {f['swept_shipments']:,} due {f['sweep_all_due_s']} s (period "
          f"{f['sweep_period_s']} s); sweep with nothing due {f['sweep_nothing_due_ms']} ms; "
          f"steady state every 5 s: mean {f['steady_sweep_ms_mean']} ms, max "
          f"{f['steady_sweep_ms_max']} ms")


if __name__ == "__main__":
    _cli()
