"""Fleet generator publishing rate against a real MQTT broker (bounded run).

    python benchmarks/fleet.py --loggers 60000 --interval 2 --duration 10 [--client paho]

Uses MQTT_URL (default: a throwaway embedded broker). The number that matters is the
acknowledged rate: QoS 1 messages the broker confirmed, per second of wall time, for a fleet
whose schedule asks for more than that (so the generator, not the schedule, is the limit).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.fastmqtt import FastPublisher  # noqa: E402
from simulators.fleet import FleetSpec, run  # noqa: E402
from simulators.publisher import Publisher  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--loggers", type=int, default=60_000)
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--processes", type=int, default=0)
    p.add_argument("--client", choices=("fast", "paho"), default="fast",
                   help="the lean socket publisher (benchmarks/fastmqtt.py) or paho, as "
                        "`coldchain simulate fleet` uses")
    p.add_argument("--url", default=os.environ.get("MQTT_URL"))
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.duration > 120:
        p.error("keep benchmark runs bounded (≤ 120 s)")
    broker = None
    url = args.url
    if not url:
        from app.embedded import EmbeddedBroker

        broker = EmbeddedBroker(Path(tempfile.mkdtemp(prefix="ccbench-")) / "mqtt")
        url = broker.start()
    spec = FleetSpec(loggers=args.loggers, interval_s=args.interval, duration_s=args.duration,
                     prefix=f"ccbench-{os.getpid()}/v1", processes=args.processes,
                     publisher=FastPublisher if args.client == "fast" else Publisher)
    try:
        result = run(spec, url)
    finally:
        if broker is not None:
            broker.stop()
    report = {
        "loggers": spec.loggers, "interval_s": spec.interval_s, "duration_s": spec.duration_s,
        "processes": spec.worker_count(), "target_msg_s": round(spec.target_rate),
        "published": result.published, "acked": result.acked,
        "elapsed_s": round(result.elapsed_s, 2), "acked_msg_s": round(result.rate),
        "max_lag_s": round(result.max_lag_s, 2), "errors": list(result.errors),
    }
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>14}: {value}")
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
