"""Dashboard API latency: the fleet overview with 10 000 shipments in flight, and a 30-day
shipment's readings at 1-minute resolution (43 200 readings), against a real `coldchain api`.

    python benchmarks/api.py [--shipments 10000] [--requests 300] [--extra-readings 0] [--json]

Uses DATABASE_URL (default: a throwaway embedded PostgreSQL): a fresh database is created,
migrated, filled directly (shipments, loggers and shipment_state rows by INSERT … SELECT, the
readings by COPY) and dropped at the end. The API runs as its own process (`coldchain api`), the
client here sends sequential requests over HTTP and reports p50/p95/p99/max per scenario.
`--extra-readings N` adds N more readings spread over the other shipments, to show that the
overview does not depend on the size of the readings table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.append(str(Path(__file__).resolve().parent))  # after the project: benchmarks/ingest.py

import asyncpg  # noqa: E402
import httpx  # noqa: E402
from scratch import create_database, drop_database, server  # noqa: E402

from app.core.migrate import upgrade  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
SETUP = [
    ("INSERT INTO sites (id, name, country) VALUES ($1, 'Leiden CTU', 'NL'), ($2, 'Boston', 'US')",
     (0, 1)),
    ("INSERT INTO products (id, name, temp_min_c, temp_max_c, alarm_delay_s, stability_budget_s,"
     " light_sensitive) VALUES ($1, 'CAR-T 2-8', 2, 8, 0, 3600, true)", (2,)),
    ("INSERT INTO packaging (id, name, qualified_hold_h) VALUES ($1, 'Passive 2-8 96h', 96)", (3,)),
    ("INSERT INTO lanes (id, name, origin_site_id, destination_site_id, expected_transit_h,"
     " max_transit_h, corridor_km) VALUES ($1, 'AMS-BOS', $2, $3, 30, 48, 100)", (4, 0, 1)),
    # The fleet rows name each shipment's stop or leg from these (positions are spread over
    # 40–52° N, 0–59° W: most fall between the two, a few inside neither radius).
    ("INSERT INTO lane_waypoints (id, lane_id, position, name, lat, lon, radius_km,"
     " dwell_allowance_h) VALUES (gen_random_uuid(), $1, 0, 'AMS', 52.31, 4.76, 10, 6),"
     " (gen_random_uuid(), $1, 1, 'KEF', 63.98, -22.6, 10, 4),"
     " (gen_random_uuid(), $1, 2, 'BOS customs', 42.36, -71.01, 10, 8)", (4,)),
]
# $1 lane, $2 product, $3 packaging, $4 origin, $5 destination, $6 now, $7 count
SHIPMENTS_SQL = """
INSERT INTO shipments (id, reference, lane_id, planned_lane_id, product_id, packaging_id,
                       origin_site_id, destination_site_id, status, packed_at, departed_at,
                       safety_margin_h)
SELECT md5('s' || g)::uuid, 'SHP-' || lpad(g::text, 6, '0'), $1, $1, $2, $3, $4, $5,
       CASE WHEN g % 10 = 0 THEN 'customs_hold' ELSE 'in_transit' END,
       $6::timestamptz - (g % 72) * interval '1 hour',
       $6::timestamptz - (g % 70) * interval '1 hour', 24
FROM generate_series(1, $7) AS g
"""
LOGGERS_SQL = """
INSERT INTO loggers (id, reporting_interval_s, status, seq_gaps)
SELECT 'LOG-' || lpad(g::text, 6, '0'), 60, 'online', 0 FROM generate_series(1, $1) AS g
"""
ASSIGN_SQL = """
INSERT INTO shipment_loggers (shipment_id, logger_id, assigned_from)
SELECT md5('s' || g)::uuid, 'LOG-' || lpad(g::text, 6, '0'), $2::timestamptz - interval '3 days'
FROM generate_series(1, $1) AS g
"""
STATE_SQL = """
INSERT INTO shipment_state (shipment_id, last_reading_ts, last_temp_c, last_lat, last_lon,
    reading_count, min_c, max_c, mean_c, time_out_of_range_s, time_unknown_s,
    stability_budget_used_s, hold_deadline, expected_arrival, margin_h, at_risk, open_alerts,
    open_critical_alerts, updated_at)
SELECT md5('s' || g)::uuid, $2, 2 + (g % 70) / 10.0, 40 + (g % 13), -(g % 60), 1440, 3, 7, 5,
       (g % 17) * 60, 0, (g % 17) * 60, $2::timestamptz + interval '40 hours',
       $2::timestamptz + ((g % 50) - 10) * interval '1 hour', 50 - (g % 97), (50 - (g % 97)) < 24,
       CASE WHEN g % 7 = 0 THEN 1 ELSE 0 END, CASE WHEN g % 53 = 0 THEN 1 ELSE 0 END, now()
FROM generate_series(1, $1) AS g
"""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _fill(url: str, shipments: int, extra_readings: int) -> tuple[str, float]:
    """The fleet, and one 30-day shipment with 43 200 one-minute readings; returns its id."""
    ids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(1, 6)]
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        for sql, which in SETUP:
            await conn.execute(sql, *[ids[i] for i in which])
        await conn.execute(SHIPMENTS_SQL, ids[4], ids[2], ids[3], ids[0], ids[1], NOW, shipments)
        await conn.execute(LOGGERS_SQL, shipments)
        await conn.execute(ASSIGN_SQL, shipments, NOW)
        await conn.execute(STATE_SQL, shipments, NOW)
        long_id = await conn.fetchval("SELECT md5('s' || 1)::uuid")
        packed = NOW - timedelta(days=30)
        await conn.execute(
            "UPDATE shipments SET packed_at = $2, departed_at = $2 WHERE id = $1", long_id, packed)
        records = [
            ("LOG-000001", packed + timedelta(minutes=i), long_id,
             5.0 + (i % 60) / 20.0 + (4.0 if 20_000 <= i < 20_030 else 0.0),
             52.0 - i / 43_200 * 10, 4.7 - i / 43_200 * 75, packed + timedelta(minutes=i, seconds=3))
            for i in range(43_200)
        ]
        await conn.copy_records_to_table(
            "readings", records=records,
            columns=["logger_id", "ts", "shipment_id", "temp_c", "lat", "lon", "received_at"])
        if extra_readings:
            await _extra(conn, shipments, extra_readings)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return str(long_id), time.perf_counter() - started


async def _extra(conn: asyncpg.Connection, shipments: int, count: int) -> None:
    await conn.execute(
        """
        INSERT INTO readings (logger_id, ts, shipment_id, temp_c, received_at)
        SELECT 'LOG-' || lpad((2 + g % ($2 - 1))::text, 6, '0'),
               $3::timestamptz - (g / ($2 - 1)) * interval '1 minute',
               md5('s' || (2 + g % ($2 - 1)))::uuid, 5, $3
        FROM generate_series(0, $1 - 1) AS g
        """, count, shipments, NOW)


async def _measure(
    http: httpx.AsyncClient, path: str, n: int, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    times: list[float] = []
    size = 0
    for _ in range(n):
        started = time.perf_counter()
        response = await http.get(path, params=params)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
        size = len(response.content)
    return {"requests": n, "p50_ms": round(_pct(times, 50), 1), "p95_ms": round(_pct(times, 95), 1),
            "p99_ms": round(_pct(times, 99), 1), "max_ms": round(max(times), 1), "bytes": size}


async def _wait_ready(http: httpx.AsyncClient, proc: asyncio.subprocess.Process) -> None:
    for _ in range(300):
        if proc.returncode is not None:
            raise RuntimeError("coldchain api exited")
        try:
            if (await http.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("coldchain api did not come up")


async def run(args: argparse.Namespace, admin_url: str) -> dict[str, Any]:
    url = await create_database(admin_url)
    proc = None
    try:
        await asyncio.to_thread(upgrade, url)
        long_id, fill_s = await _fill(url, args.shipments, args.extra_readings)
        key = "bench-" + secrets.token_hex(16)
        port = _free_port()
        env = {**os.environ, "DATABASE_URL": url, "MQTT_URL": "mqtt://127.0.0.1:1",
               "COLDCHAIN_ADMIN_API_KEY": key, "COLDCHAIN_RATE_LIMIT_PER_S": "0"}
        proc = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("coldchain")), "api", "--port", str(port),
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers,
                                     timeout=30) as http:
            await _wait_ready(http, proc)
            n = args.requests
            await _measure(http, "/api/v1/shipments", 20)  # warm-up (pool, plans)
            first = (await http.get("/api/v1/shipments")).json()
            results = {
                "fleet_risk_sorted": await _measure(http, "/api/v1/shipments", n),
                "fleet_in_flight_filtered": await _measure(
                    http, "/api/v1/shipments",
                    n, {"status": ["in_transit", "customs_hold"], "at_risk": "true",
                        "has_open_alerts": "true"}),
                "fleet_text_search": await _measure(http, "/api/v1/shipments", n,
                                                    {"q": "SHP-0012"}),
                "fleet_next_page": await _measure(http, "/api/v1/shipments", n,
                                                  {"cursor": first["next_cursor"]}),
                "readings_30d_every_1min": await _measure(
                    http, f"/api/v1/shipments/{long_id}/readings", max(n // 10, 20),
                    {"every": "1min"}),
                "readings_30d_every_15min": await _measure(
                    http, f"/api/v1/shipments/{long_id}/readings", max(n // 10, 20),
                    {"every": "15min"}),
                "readings_raw_page_1000": await _measure(
                    http, f"/api/v1/shipments/{long_id}/readings", max(n // 10, 20),
                    {"limit": "1000"}),
            }
            buckets = len((await http.get(f"/api/v1/shipments/{long_id}/readings",
                                          params={"every": "1min"})).json()["items"])
        return {"shipments_in_flight": args.shipments, "long_shipment_readings": 43_200,
                "buckets_1min": buckets, "extra_readings": args.extra_readings,
                "fill_s": round(fill_s, 1), "results": results}
    finally:
        if proc is not None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if not args.keep:
            await drop_database(admin_url, url)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shipments", type=int, default=10_000)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--extra-readings", type=int, default=0)
    p.add_argument("--keep", action="store_true", help="keep the benchmark database")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.requests > 5000 or args.extra_readings > 50_000_000:
        p.error("keep benchmark runs bounded")
    with server() as admin:
        report = asyncio.run(run(args, admin))
    report["command"] = "python benchmarks/api.py " + " ".join(sys.argv[1:])
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"command: {report['command']}")
    print(f"shipments in flight: {report['shipments_in_flight']}, 30-day shipment: "
          f"{report['long_shipment_readings']} readings ({report['buckets_1min']} 1-min buckets),"
          f" extra readings: {report['extra_readings']}, fill {report['fill_s']} s")
    print(f"{'scenario':<28}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'bytes':>11}")
    for name, r in report["results"].items():
        print(f"{name:<28}{r['requests']:>6}{r['p50_ms']:>9}{r['p95_ms']:>9}{r['p99_ms']:>9}"
              f"{r['max_ms']:>9}{r['bytes']:>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
