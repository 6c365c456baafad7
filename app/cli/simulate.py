"""`coldchain simulate`: list the scenario library, play a scenario, or run a load fleet."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from app.core.errors import Problem
from app.core.settings import get_settings
from app.runtime import resolved
from simulators import fleet, history, runner
from simulators import scenario as scenarios
from simulators.registry import register_loggers


class _ScenarioOrCommand(TyperGroup):
    """`simulate fleet …` runs the fleet; `simulate NAME …` plays scenario NAME (the `play`
    command, so a scenario needs no sub-command word: the contract's `simulate SCENARIO`)."""

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            return "play", self.commands["play"], args
        return super().resolve_command(ctx, args)


cli = typer.Typer(
    cls=_ScenarioOrCommand, invoke_without_command=True, add_completion=False,
    help="Simulated loggers publishing over MQTT like real ones: `--list`, `SCENARIO [--speed X | "
         "--backfill]`, `fleet --loggers N --interval S`; a lane's delivered history: "
         "`history --lane LANE --n N [--seed S]`.",
)


USAGE = """usage: coldchain simulate --list
       coldchain simulate SCENARIO [--speed X | --backfill] [--tag T]
       coldchain simulate fleet --loggers N --interval S [--duration S] [--lanes M] [--processes P]
                                [--no-register]
       coldchain simulate history --lane LANE [--n N] [--seed S]"""


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def list_lines() -> list[str]:
    lines = []
    for name, sc in scenarios.library().items():
        alerts = ", ".join(sorted(sc.alerts)) or "no alerts"
        if sc.transitions:
            alerts += " (live: " + ", ".join(
                f"{t.kind} {t.state} +{t.at_s / 3600:g} h" for t in sc.transitions) + ")"
        lines.append(f"{name}\t{alerts}\t{sc.title}")
    return lines


@cli.callback()
def simulate(
    ctx: typer.Context,
    list_: Annotated[bool, typer.Option("--list", help="list the scenarios and their alerts")] = False,
) -> None:
    if list_:
        for line in list_lines():
            typer.echo(line)
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        typer.echo(USAGE, err=True)
        raise typer.Exit(2)


@cli.command()
def play(
    scenario: Annotated[str, typer.Argument(help="scenario name (see --list)")],
    speed: Annotated[float | None, typer.Option(
        help="time acceleration: 1 = real time (default), 60, 3600 …")] = None,
    backfill: Annotated[bool, typer.Option(
        "--backfill", help="publish the history at once with past device times, tail live")] = False,
    tag: Annotated[str | None, typer.Option(
        help="suffix for logger ids and the shipment reference")] = None,
) -> None:
    """Set a scenario's shipment up and play its loggers (also `coldchain simulate SCENARIO`)."""
    try:
        sc = scenarios.get(scenario)
    except KeyError as exc:
        typer.echo(f"error: {exc.args[0]} (see `coldchain simulate --list`)", err=True)
        raise typer.Exit(2) from exc
    if backfill and speed is not None:
        typer.echo("error: --speed and --backfill exclude each other", err=True)
        raise typer.Exit(2)
    if speed is not None and speed <= 0:
        typer.echo("error: --speed must be positive", err=True)
        raise typer.Exit(2)
    _logging()
    pace = None if backfill else (speed or 1.0)
    mode = "back-filled" if pace is None else f"at ×{pace:g}"
    typer.echo(f"{sc.name}: {sc.title}\n  timeline {sc.duration_s / 3600:.1f} h, played {mode}; "
               f"must raise: {', '.join(sorted(sc.alerts)) or 'nothing'}")
    with resolved(get_settings()) as live:
        result = asyncio.run(runner.run(live, sc, speed=pace, tag=tag))
    typer.echo(f"  shipment {result.reference} ({result.shipment_id}), loggers "
               f"{', '.join(result.logger_ids)}\n  published {result.messages} messages carrying "
               f"{result.readings} distinct readings")


@cli.command("fleet")
def run_fleet(
    loggers: Annotated[int, typer.Option(min=1, help="simulated loggers")],
    interval: Annotated[float, typer.Option(min=0.001, help="seconds between readings")],
    duration: Annotated[float | None, typer.Option(help="seconds (default: until Ctrl-C)")] = None,
    lanes: Annotated[int, typer.Option(min=1)] = 8,
    processes: Annotated[int, typer.Option(min=0, help="publisher processes (0: automatic)")] = 0,
    id_prefix: Annotated[str, typer.Option()] = "fleet",
    no_register: Annotated[bool, typer.Option(
        "--no-register", help="do not register the loggers in the database first")] = False,
) -> None:
    """A load of N simulated loggers on M lanes publishing live readings."""
    _logging()
    settings = get_settings()
    spec = fleet.FleetSpec(loggers=loggers, interval_s=interval, duration_s=duration, lanes=lanes,
                           prefix=settings.topic_prefix, id_prefix=id_prefix, processes=processes)
    with resolved(settings) as live:
        if not no_register:
            created = asyncio.run(register_loggers(live, spec))
            typer.echo(f"registered {created} new loggers ({spec.loggers} in the fleet)")
        typer.echo(f"fleet: {spec.loggers} loggers every {spec.interval_s:g} s = "
                   f"{spec.target_rate:,.0f} msg/s target, {spec.worker_count()} process(es)")
        try:
            result = fleet.run(spec, live.mqtt_url or "")
        except KeyboardInterrupt as exc:
            raise typer.Exit(130) from exc
    typer.echo(f"published {result.published:,} acknowledged {result.acked:,} in "
               f"{result.elapsed_s:.1f} s = {result.rate:,.0f} msg/s (max lag {result.max_lag_s:.2f} s)")
    for err in result.errors:
        typer.echo(f"error: {err}", err=True)
    raise typer.Exit(1 if result.errors else 0)


@cli.command("history")
def run_history(
    lane: Annotated[str, typer.Option(help="the lane's id or name")],
    n: Annotated[int, typer.Option("--n", min=1, max=1000, help="delivered shipments")] = 50,
    seed: Annotated[int, typer.Option(help="the same seed gives the same history")] = 0,
) -> None:
    """A lane's delivered history: N shipments over the past fortnight, each with its readings
    (positions every 15 min) and custody events, received (so its forecasts use lane_history)."""
    _logging()
    with resolved(get_settings(), broker=False) as live:
        try:
            created = asyncio.run(history.run(live, lane, n, seed))
        except Problem as exc:  # no such lane, or one that cannot be simulated
            typer.echo(f"error: {exc.detail}", err=True)
            raise typer.Exit(2) from exc
    typer.echo(f"{len(created)} delivered shipments stored on lane {lane} "
               f"({n - len(created)} of seed {seed} were there already)")
