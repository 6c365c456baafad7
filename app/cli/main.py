"""The `coldchain` command: run roles, migrate, simulate, report, verify the audit chain."""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from app.cli import audit, receiver, report, simulate
from app.core.settings import Settings, get_settings
from app.runtime import RoleUnavailable, ServersUnavailable, resolved, run_roles
from simulators import demo as seeding

cli = typer.Typer(help="Cold-chain shipment monitoring service.", no_args_is_help=True,
                  add_completion=False)
cli.add_typer(audit.cli, name="audit")
cli.add_typer(simulate.cli, name="simulate")
cli.command()(receiver.receiver)
cli.command()(report.report)

Host = Annotated[str | None, typer.Option(help="API bind address (default 127.0.0.1)")]
Port = Annotated[int | None, typer.Option(help="API port (default 8000)")]


def _settings(host: str | None = None, port: int | None = None) -> Settings:
    settings = get_settings()
    updates = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    return settings.model_copy(update=updates)


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _run(settings: Settings, roles: list[str], *, migrate_first: bool = False) -> None:
    _logging()
    # Only ingest talks to the broker: an API or alerts process needs none, embedded or not.
    with resolved(settings, broker="ingest" in roles) as live:
        if migrate_first:
            _migrate(live)
        try:
            asyncio.run(run_roles(live, roles))
        except RoleUnavailable as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc


def _migrate(live: Settings) -> None:
    """Migrations as the owner (COLDCHAIN_MIGRATION_DATABASE_URL), then the service role's grants."""
    from app.core.migrate import upgrade

    upgrade(live.migration_url or "", service_url=live.database_url)


@cli.command()
def migrate() -> None:
    """Apply the Alembic migrations to the configured (or embedded) database."""
    _logging()
    with resolved(get_settings(), broker=False) as live:
        _migrate(live)
    typer.echo("database is at the latest schema revision")


@cli.command()
def up(host: Host = None, port: Port = None) -> None:
    """API + ingest + alert workers in one process."""
    _run(_settings(host, port), ["api", "ingest", "alerts"], migrate_first=True)


@cli.command()
def api(host: Host = None, port: Port = None) -> None:
    """The HTTP API and web page only."""
    _run(_settings(host, port), ["api"])


@cli.command()
def ingest() -> None:
    """One MQTT ingest worker (run several: they share the load through a shared subscription)."""
    _run(_settings(), ["ingest"])


@cli.command()
def alerts() -> None:
    """The evaluation, escalation and webhook delivery worker."""
    _run(_settings(), ["alerts"])


@cli.command()
def demo(host: Host = None, port: Port = None) -> None:
    """The whole system on embedded defaults, seeded lanes and a live simulated fleet."""
    _logging()
    settings = _settings(host, port)
    if not settings.admin_api_key:
        settings = settings.model_copy(update={"admin_api_key": "demo-" + secrets.token_urlsafe(32)})
    with resolved(settings) as live:
        _migrate(live)
        asyncio.run(seeding.seed(live))
        asyncio.run(seeding.seed_history(live))
        keys = asyncio.run(seeding.role_keys(live))
        people = asyncio.run(seeding.role_people(live))
        (qp_email, qp_password), (co_email, co_password) = people["qp"], people["coordinator"]
        typer.echo(
            f"\n  Dashboard:  http://{live.host}:{live.port}/  — sign in with an email and password:\n"
            f"    QP:          {qp_email}  password {qp_password}  (signs release decisions)\n"
            f"    Coordinator: {co_email}  password {co_password}  (acknowledge, resolve)\n"
            f"  API docs:   http://{live.host}:{live.port}/docs\n"
            f"  Admin key:  {live.admin_api_key}  (set-up, /users; never decides on the record)\n"
            f"  Coordinator key:  {keys['coordinator']}  (scripts; API keys cannot sign a release)\n"
            f"  Database:   {live.database_url}\n  Broker:     {live.mqtt_url}\n"
            f"  E-mail:     {mail_status(live)}\n"
            "  Ctrl-C stops everything.\n"
        )
        asyncio.run(run_roles(live, ["api", "ingest", "alerts"], extra=[seeding.run_fleet]))


def mail_status(settings: Settings) -> str:
    """What the demo says of alert e-mail (it never starts a mail server of its own)."""
    if settings.smtp is None:
        return "e-mail notifications off: COLDCHAIN_SMTP_URL unset"
    return f"e-mail notifications via {settings.smtp} from {settings.mail_from}"


def main() -> None:
    try:
        cli(prog_name="coldchain")
    except ValidationError as exc:  # the environment's configuration: say what, not a traceback
        for error in exc.errors():
            typer.echo(f"error: configuration: {error['msg'].removeprefix('Value error, ')}", err=True)
        sys.exit(2)
    except ServersUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
    sys.exit(0)
