"""`coldchain audit verify`: walk the audit hash chain; non-zero exit when it is broken."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.core.audit_verify import KeptHead, VerifyResult, verify_chain
from app.core.db import make_engine, make_sessionmaker
from app.core.settings import Settings, get_settings
from app.runtime import resolved

cli = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


async def _verify_url(database_url: str, kept: KeptHead | None) -> VerifyResult:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            return await verify_chain(session, kept=kept)
    finally:
        await engine.dispose()


def run(settings: Settings, kept: KeptHead | None = None) -> int:
    """Exit code 0 when the chain is intact (and holds the kept head), 1 otherwise."""
    with resolved(settings, broker=False) as live:
        result = asyncio.run(_verify_url(live.database_url or "", kept))
    print(result.describe())
    return 0 if result.ok else 1


@cli.command("verify")
def verify(
    head: Annotated[str | None, typer.Option(
        "--head", metavar="ID:HASH",
        help="a head kept elsewhere (a checkpoint, an earlier run's output): fail unless that "
             "record is still in the chain with that hash")] = None,
) -> None:
    """Walk the audit hash chain: broken links, missing records, and a kept head."""
    try:
        kept = KeptHead.parse(head) if head is not None else None
    except ValueError as exc:
        typer.echo(f"error: --head: {exc}", err=True)
        raise typer.Exit(2) from exc
    raise typer.Exit(run(get_settings(), kept))
