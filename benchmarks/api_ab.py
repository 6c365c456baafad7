"""The fleet list of this checkout against another checkout's, on one database in one run: two
`coldchain api` processes (the other's code first on PYTHONPATH), requests alternated between them
so that the load of a shared machine falls on both alike; the ratio this/other per scenario (p50).

    python benchmarks/api_ab.py --baseline PATH [--shipments 10000] [--requests 400] [--json]

PATH is a checkout of the code to compare with (e.g. `git worktree add --detach /tmp/base main~3`),
its migrations no newer than this one's. The fleet is benchmarks/api.py's (a fresh database, filled
directly, dropped at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.append(str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from api import _fill, _free_port, _wait_ready  # noqa: E402
from scratch import create_database, drop_database, server  # noqa: E402

from app.core.migrate import upgrade  # noqa: E402

FLEET = "/api/v1/shipments"


async def _start(url: str, key: str, pythonpath: str | None) -> tuple[Any, httpx.AsyncClient]:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": url, "MQTT_URL": "mqtt://127.0.0.1:1",
           "COLDCHAIN_ADMIN_API_KEY": key, "COLDCHAIN_RATE_LIMIT_PER_S": "0"}
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("coldchain")), "api", "--port", str(port), env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30,
                             headers={"Authorization": f"Bearer {key}"})
    await _wait_ready(http, proc)
    return proc, http


async def _pair(ours: httpx.AsyncClient, theirs: httpx.AsyncClient, n: int,
                params: dict[str, Any] | None) -> dict[str, Any]:
    times: dict[str, list[float]] = {"ours": [], "theirs": []}
    for _ in range(10):  # warm-up: pools, plans, caches
        await ours.get(FLEET, params=params)
        await theirs.get(FLEET, params=params)
    for i in range(n):
        order = (("ours", ours), ("theirs", theirs)) if i % 2 else (
            ("theirs", theirs), ("ours", ours))
        for name, http in order:
            started = time.perf_counter()
            response = await http.get(FLEET, params=params)
            times[name].append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{name}: {response.status_code} {response.text[:300]}")
    sizes = [len((await h.get(FLEET, params=params)).content) for h in (ours, theirs)]
    ours_p50, theirs_p50 = statistics.median(times["ours"]), statistics.median(times["theirs"])
    return {"requests": n, "baseline_p50_ms": round(theirs_p50, 1),
            "this_p50_ms": round(ours_p50, 1), "ratio": round(ours_p50 / theirs_p50, 3),
            "baseline_bytes": sizes[1], "this_bytes": sizes[0]}


async def run(args: argparse.Namespace, admin_url: str) -> dict[str, Any]:
    url = await create_database(admin_url)
    procs = []
    try:
        await asyncio.to_thread(upgrade, url)
        await _fill(url, args.shipments, 0)
        key = "bench-" + secrets.token_hex(16)
        theirs_proc, theirs = await _start(url, key, args.baseline)
        procs.append(theirs_proc)
        ours_proc, ours = await _start(url, key, None)
        procs.append(ours_proc)
        first = (await theirs.get(FLEET)).json()
        n = args.requests
        scenarios = {
            "fleet_risk_sorted": (n, None),
            "fleet_in_flight_filtered": (n, {"status": ["in_transit", "customs_hold"],
                                             "at_risk": "true", "has_open_alerts": "true"}),
            "fleet_next_page": (n, {"cursor": first["next_cursor"]}),
            "fleet_limit_1000": (max(n // 8, 10), {"limit": "1000"}),
        }
        results = {name: await _pair(ours, theirs, count, params)
                   for name, (count, params) in scenarios.items()}
        for http in (ours, theirs):
            await http.aclose()
        return {"shipments": args.shipments, "baseline": str(args.baseline), "results": results}
    finally:
        for proc in procs:
            proc.terminate()
            await proc.wait()
        await drop_database(admin_url, url)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", required=True, help="a checkout of the code to compare with")
    p.add_argument("--shipments", type=int, default=10_000)
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.requests > 5000 or not (Path(args.baseline) / "app").is_dir():
        p.error("--baseline must be a checkout (with app/); keep runs bounded")
    args.baseline = str(Path(args.baseline).resolve())
    with server() as admin:
        report = asyncio.run(run(args, admin))
    report["command"] = "python benchmarks/api_ab.py " + " ".join(sys.argv[1:])
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"command: {report['command']}")
    print(f"{'scenario':<28}{'n':>6}{'base p50':>10}{'this p50':>10}{'ratio':>8}"
          f"{'base bytes':>12}{'this bytes':>12}")
    for name, r in report["results"].items():
        print(f"{name:<28}{r['requests']:>6}{r['baseline_p50_ms']:>10}{r['this_p50_ms']:>10}"
              f"{r['ratio']:>8}{r['baseline_bytes']:>12}{r['this_bytes']:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
