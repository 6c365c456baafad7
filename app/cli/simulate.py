"""`coldchain simulate`: list the scenario library, play a scenario, or run a load fleet."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from app.core.settings import Settings
from simulators import scenario as scenarios

USAGE = """coldchain simulate --list
       coldchain simulate SCENARIO [--speed X | --backfill] [--tag T]
       coldchain simulate fleet --loggers N --interval S [--duration S] [--lanes M]
                                [--processes P] [--no-register]"""


def _scenario_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coldchain simulate", usage=USAGE, description=(
        "Play a scenario's loggers over MQTT after setting its shipment up in the database."))
    p.add_argument("--list", action="store_true", help="list the scenarios and their alerts")
    p.add_argument("scenario", nargs="?", help="scenario name (see --list)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--speed", type=float, default=1.0,
                      help="time acceleration: 1 = real time, 60, 3600 … (default 1)")
    mode.add_argument("--backfill", action="store_true",
                      help="publish the history at once with past device times, tail live")
    p.add_argument("--tag", help="suffix for logger ids and the shipment reference")
    return p


def _fleet_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coldchain simulate fleet", usage=USAGE, description=(
        "A load of N simulated loggers on M lanes publishing live readings."))
    p.add_argument("--loggers", type=int, required=True)
    p.add_argument("--interval", type=float, required=True, help="seconds between readings")
    p.add_argument("--duration", type=float, default=None, help="seconds (default: until Ctrl-C)")
    p.add_argument("--lanes", type=int, default=8)
    p.add_argument("--processes", type=int, default=0, help="publisher processes (0: automatic)")
    p.add_argument("--id-prefix", default="fleet")
    p.add_argument("--client", choices=("fast", "paho"), default="fast",
                   help="MQTT client: a lean socket publisher (default) or paho")
    p.add_argument("--no-register", action="store_true",
                   help="do not register the loggers in the database first")
    return p


def list_lines() -> list[str]:
    lines = []
    for name, sc in scenarios.library().items():
        alerts = ", ".join(sorted(sc.alerts)) or "no alerts"
        lines.append(f"{name}\t{alerts}\t{sc.title}")
    return lines


def _run_scenario(settings: Settings, args: argparse.Namespace) -> int:
    from app.runtime import resolved
    from simulators import runner

    try:
        sc = scenarios.get(args.scenario)
    except KeyError as exc:
        print(f"error: {exc.args[0]} (see `coldchain simulate --list`)", file=sys.stderr)
        return 2
    if args.speed <= 0:
        print("error: --speed must be positive", file=sys.stderr)
        return 2
    speed = None if args.backfill else args.speed
    mode = "back-filled" if speed is None else f"at ×{speed:g}"
    print(f"{sc.name}: {sc.title}\n  timeline {sc.duration_s / 3600:.1f} h, played {mode}; "
          f"must raise: {', '.join(sorted(sc.alerts)) or 'nothing'}")
    with resolved(settings) as live:
        result = asyncio.run(runner.run(live, sc, speed=speed, tag=args.tag))
    print(f"  shipment {result.reference} ({result.shipment_id}), loggers "
          f"{', '.join(result.logger_ids)}\n  published {result.messages} messages carrying "
          f"{result.readings} distinct readings")
    return 0


def _run_fleet(settings: Settings, args: argparse.Namespace) -> int:
    from app.runtime import resolved
    from simulators import fleet

    spec = fleet.FleetSpec(loggers=args.loggers, interval_s=args.interval,
                           duration_s=args.duration, lanes=args.lanes,
                           prefix=settings.topic_prefix, id_prefix=args.id_prefix,
                           processes=args.processes, client=args.client)
    with resolved(settings) as live:
        if not args.no_register:
            from simulators.registry import register_loggers

            created = asyncio.run(register_loggers(live, spec))
            print(f"registered {created} new loggers ({spec.loggers} in the fleet)")
        print(f"fleet: {spec.loggers} loggers every {spec.interval_s:g} s = "
              f"{spec.target_rate:,.0f} msg/s target, {spec.worker_count()} process(es)")
        try:
            result = fleet.run(spec, live.mqtt_url or "")
        except KeyboardInterrupt:
            return 130
    print(f"published {result.published:,} acknowledged {result.acked:,} in "
          f"{result.elapsed_s:.1f} s = {result.rate:,.0f} msg/s (max lag {result.max_lag_s:.2f} s)")
    for err in result.errors:
        print(f"error: {err}", file=sys.stderr)
    return 1 if result.errors else 0


def main(args: Sequence[str], settings: Settings) -> int:
    """Entry point of `coldchain simulate …`; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = list(args)
    try:
        if args and args[0] == "fleet":
            return _run_fleet(settings, _fleet_parser().parse_args(args[1:]))
        ns = _scenario_parser().parse_args(args)
    except SystemExit as exc:  # argparse: --help or a usage error
        return int(exc.code or 0)
    if ns.list:
        for line in list_lines():
            print(line)
        return 0
    if not ns.scenario:
        print(USAGE, file=sys.stderr)
        return 2
    return _run_scenario(settings, ns)
