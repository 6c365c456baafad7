"""`coldchain receiver`: a site's webhook receiver on 127.0.0.1 that prints every event it gets."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer

from simulators.receiver import Receiver


async def _serve(port: int, secrets: list[str], fail_first: int) -> None:
    receiver = Receiver(secrets, port=port)
    receiver.fail_next(*(["500"] * fail_first))
    async with receiver:
        typer.echo(f"receiving webhooks at {receiver.url()}")
        seen = 0
        while True:
            await receiver.wait_requests(seen + 1, within_s=10**9)
            for r in receiver.requests[seen:]:
                typer.echo(f"{r.action} {r.webhook_id} verified={r.verified} {r.body.decode()[:200]}")
            seen = len(receiver.requests)


def receiver(
    port: Annotated[int, typer.Option(min=0, max=65535, help="port on 127.0.0.1 (0: any free one)")] = 9000,
    secret: Annotated[list[str] | None, typer.Option(
        help="the subscription's whsec_… secret, to verify signatures (repeatable)")] = None,
    fail_first: Annotated[int, typer.Option(min=0, help="answer 500 to the first N requests")] = 0,
) -> None:
    """Receive alert webhooks like a site would: verify each signature and print the event."""
    bad = [s for s in secret or [] if not s.startswith("whsec_")]
    if bad:
        typer.echo("error: --secret is a whsec_… secret (as POST /webhooks answered)", err=True)
        raise typer.Exit(2)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(port, secret or [], fail_first))
