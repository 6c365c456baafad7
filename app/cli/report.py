"""`coldchain report SHIPMENT [--format json|csv|pdf|epcis] [-o FILE]`: the release report."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from app.core.db import make_engine, make_sessionmaker
from app.core.errors import NotFound
from app.core.models import utcnow
from app.core.settings import Settings, get_settings
from app.reports import data
from app.reports.render import FORMATS, Rendered, render
from app.runtime import resolved


async def generate(settings: Settings, shipment: str, fmt: str) -> Rendered:
    engine = make_engine(settings.database_url or "", pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            # One snapshot: every part of the report sees the same committed state.
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            row = await data.find_shipment(session, shipment)
            loaded = await data.load(session, row, utcnow())
        base = f"http://{settings.host}:{settings.port}/api/v1/"
        return await asyncio.to_thread(render, loaded, fmt, base)
    finally:
        await engine.dispose()


def run(settings: Settings, shipment: str, format: str, output: str | None) -> int:  # noqa: A002
    """Exit codes: 0 written, 1 no such shipment, 2 bad arguments."""
    if format not in FORMATS:
        print(f"error: unknown format {format!r} (one of {', '.join(FORMATS)})", file=sys.stderr)
        return 2
    with resolved(settings, broker=False) as live:
        try:
            rendered = asyncio.run(generate(live, shipment, format))
        except NotFound:
            print(f"error: no shipment with id or reference {shipment!r}", file=sys.stderr)
            return 1
    if output:
        Path(output).write_bytes(rendered.body)
        print(f"wrote {output} ({len(rendered.body)} bytes, {rendered.media_type})",
              file=sys.stderr)
    else:
        sys.stdout.buffer.write(rendered.body)
        sys.stdout.buffer.flush()
    return 0


def report(
    shipment: Annotated[str, typer.Argument(help="shipment id or reference")],
    format: Annotated[str, typer.Option("--format", help="json, csv, pdf or epcis")] = "json",  # noqa: A002
    output: Annotated[str | None, typer.Option("--output", "-o", help="file to write")] = None,
) -> None:
    """The release report of one shipment (stdout, or the file named by -o)."""
    raise typer.Exit(run(get_settings(), shipment, format, output))
