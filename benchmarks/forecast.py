"""Arrival forecasts at fleet scale: the fleet list with 10 000 stored forecasts against the same
list without them (same database, same API process, same run), and the cost of forecasting.

    python benchmarks/forecast.py [--shipments 10000] [--requests 300] [--json]

The fleet is benchmarks/api.py's (a fresh database, filled directly, `coldchain api` in its own
process). Phase "without": `shipment_forecasts` is empty (the join finds nothing); phase "with":
every shipment has a forecast (INSERT … SELECT, ANALYZE). The ratio with/without is per scenario
(p50). The compute figure is the pure core in this process: µs per shipment forecast from the
lane spec, and from a 50-delivery history (`simulators.history` journeys) — what the alerts
engine adds to each shipment it judges.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.append(str(Path(__file__).resolve().parent))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
from api import NOW, _fill, _free_port, _measure, _wait_ready  # noqa: E402
from scratch import create_database, drop_database, server  # noqa: E402

from alerts.forecast.adapter import Where, lane_model, predict  # noqa: E402
from alerts.rules import LaneSpec, Waypoint  # noqa: E402
from app.core.migrate import upgrade  # noqa: E402
from simulators.history import LanePlan, steps  # noqa: E402

FORECASTS_SQL = """
INSERT INTO shipment_forecasts (shipment_id, lane_id, on_time_probability, arrival_p50,
    arrival_p90, method, delivered_n, hold_deadline, leg_started_at, segment, segment_since,
    overrun_h, computed_at)
SELECT s.id, s.lane_id, (g % 101) / 100.0, $2::timestamptz + (g % 40) * interval '1 hour',
       $2::timestamptz + (g % 40 + 6) * interval '1 hour',
       CASE WHEN g % 3 = 0 THEN 'lane_spec' ELSE 'lane_history' END, 50,
       $2::timestamptz + interval '40 hours', s.departed_at, (g % 5), s.departed_at, 0, now()
FROM generate_series(1, $1) AS g JOIN shipments s ON s.id = md5('s' || g)::uuid
"""
WAYPOINTS = (
    {"name": "Leiden CTU", "lat": 52.16, "lon": 4.49, "radius_km": 2, "dwell_allowance_h": 4},
    {"name": "AMS", "lat": 52.31, "lon": 4.76, "radius_km": 5, "dwell_allowance_h": 6},
    {"name": "BOS customs", "lat": 42.36, "lon": -71.01, "radius_km": 5, "dwell_allowance_h": 8},
    {"name": "Boston", "lat": 42.34, "lon": -71.10, "radius_km": 2, "dwell_allowance_h": 2},
)


def compute_us(n: int) -> dict[str, float]:
    """µs per forecast, spec and history, over `n` shipments at varied places on the lane."""
    spec = LaneSpec(30.0, 48.0, 100.0, tuple(Waypoint(**w) for w in WAYPOINTS))
    plan = LanePlan("AMS-BOS", 30.0, 48.0, 100.0, WAYPOINTS)
    rng = random.Random(1)
    rows = []
    for _ in range(50):
        drawn = steps(plan, random.Random(rng.randrange(2**31)))
        # Departure leaves the first waypoint and delivery is the arrival at the last: their
        # dwell (and the legs before and after) are zero.
        rows.append([0.0, 0.0, *(s["hours"] for s in drawn[1:-1]), 0.0, 0.0])
    totals = [sum(r) for r in rows]
    models = {"lane_spec": lane_model(spec), "lane_history": lane_model(spec, totals, rows)}
    places = [Where(NOW - timedelta(hours=h), seg, NOW - timedelta(hours=h / 2), 0.0,
                    NOW + timedelta(hours=40), None)
              for h, seg in ((rng.uniform(0, 40), rng.randrange(9)) for _ in range(n))]
    out = {}
    for name, model in models.items():
        started = time.perf_counter()
        for w in places:
            predict(model, w, NOW)
        out[name] = round((time.perf_counter() - started) / n * 1e6, 1)
    return out


async def _phase(http: httpx.AsyncClient, n: int, cursor: str | None) -> dict[str, Any]:
    await _measure(http, "/api/v1/shipments", 20)  # warm-up (plans, caches)
    return {
        "fleet_risk_sorted": await _measure(http, "/api/v1/shipments", n),
        "fleet_at_risk": await _measure(http, "/api/v1/shipments", n, {"at_risk": "true"}),
        "fleet_next_page": await _measure(http, "/api/v1/shipments", n, {"cursor": cursor}),
    }


async def run(args: argparse.Namespace, admin_url: str) -> dict[str, Any]:
    url = await create_database(admin_url)
    proc = None
    try:
        await asyncio.to_thread(upgrade, url)
        await _fill(url, args.shipments, 0)
        key = "bench-" + secrets.token_hex(16)
        port = _free_port()
        env = {**os.environ, "DATABASE_URL": url, "MQTT_URL": "mqtt://127.0.0.1:1",
               "COLDCHAIN_ADMIN_API_KEY": key, "COLDCHAIN_RATE_LIMIT_PER_S": "0"}
        proc = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("coldchain")), "api", "--port", str(port),
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                     headers={"Authorization": f"Bearer {key}"},
                                     timeout=30) as http:
            await _wait_ready(http, proc)
            first = (await http.get("/api/v1/shipments")).json()
            without = await _phase(http, args.requests, first["next_cursor"])
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(FORECASTS_SQL, args.shipments, NOW)
                await conn.execute("ANALYZE shipment_forecasts")
            finally:
                await conn.close()
            first = (await http.get("/api/v1/shipments")).json()
            assert first["items"][0]["forecast_basis"] is not None
            with_ = await _phase(http, args.requests, first["next_cursor"])
        ratios = {k: round(with_[k]["p50_ms"] / without[k]["p50_ms"], 2) for k in with_}
        return {"shipments": args.shipments, "without_forecasts": without,
                "with_forecasts": with_, "ratio_p50": ratios,
                "compute_us_per_forecast": compute_us(args.shipments)}
    finally:
        if proc is not None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await drop_database(admin_url, url)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shipments", type=int, default=10_000)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.requests > 5000 or args.shipments > 1_000_000:
        p.error("keep benchmark runs bounded")
    with server() as admin:
        report = asyncio.run(run(args, admin))
    report["command"] = "python benchmarks/forecast.py " + " ".join(sys.argv[1:])
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"command: {report['command']}\nshipments: {report['shipments']}")
    print(f"{'scenario':<22}{'without p50':>12}{'p99':>8}{'with p50':>10}{'p99':>8}{'ratio':>7}")
    for k, ratio in report["ratio_p50"].items():
        a, b = report["without_forecasts"][k], report["with_forecasts"][k]
        print(f"{k:<22}{a['p50_ms']:>12}{a['p99_ms']:>8}{b['p50_ms']:>10}{b['p99_ms']:>8}"
              f"{ratio:>7}")
    print("forecast compute, µs per shipment:", report["compute_us_per_forecast"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
