"""A delivery process SIGKILLed mid-send: the event is still delivered, with the same id, after restart."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alerts.webhooks.delivery import DeliveryConfig
from app.core.models import WebhookAttempt, WebhookDelivery
from app.core.settings import Settings
from simulators.receiver import STALL, Receiver
from tests import factories
from tests.webhooks_support import deliver, open_alert, shipment, subscribe

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 10.0  # the default: the stalled attempt must still be on the wire at the SIGKILL
# The worker process: run_delivery until SIGTERM, its clock shifted by argv[1] seconds.
WORKER = """
import asyncio, signal, sys
from datetime import timedelta
from alerts.webhooks.delivery import run_delivery
from app.core.models import utcnow
from app.core.settings import Settings

async def main() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    shift = timedelta(seconds=float(sys.argv[1]))
    await run_delivery(Settings(), stop, now=lambda: utcnow() + shift)

asyncio.run(main())
"""


async def _spawn(settings: Settings, shift_s: float) -> asyncio.subprocess.Process:
    env = {
        **os.environ, "DATABASE_URL": settings.database_url or "",
        "COLDCHAIN_WEBHOOK_ALLOW_PRIVATE": "true", "COLDCHAIN_WEBHOOK_TIMEOUT_S": str(TIMEOUT_S),
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", WORKER, str(shift_s), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )


async def test_killed_mid_send_then_delivered_after_restart(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, settings: Settings
) -> None:
    async with Receiver(stall_s=30) as receiver:
        origin = await factories.site(client, "Leiden CTU", "NL")
        destination = await factories.site(client, "Boston infusion centre", "US")
        ship = await shipment(client, origin, destination, "SHP-KILL")
        receiver.secrets.append((await subscribe(client, receiver.url()))["secret"])
        await open_alert(db, ship["id"])
        receiver.fail_next(STALL)  # the first request hangs: the worker is mid-send

        first = await _spawn(settings, 0)
        try:
            await receiver.wait_requests(1, within_s=30)
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        assert first.returncode == -signal.SIGKILL
        receiver.release.set()

        row = (await db.scalars(select(WebhookDelivery))).one()
        assert row.state == "pending" and row.leased_until is not None and row.attempts == 1
        # While the dead worker's lease runs, nobody sends the row a second time …
        assert await deliver(engine, datetime.now(UTC)) == 0
        # … and once it has run out, a restarted worker delivers it.
        lease = DeliveryConfig(timeout_s=TIMEOUT_S).lease.total_seconds()
        second = await _spawn(settings, lease + 5)
        try:
            await receiver.wait_delivered(1, within_s=30)
        finally:
            second.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(second.communicate(), 20)
        assert second.returncode == 0, stderr.decode()[-2000:]

        stalled, delivered = receiver.requests
        assert stalled.webhook_id == delivered.webhook_id == row.webhook_id
        assert stalled.body == delivered.body and delivered.verified
        await db.refresh(row)
        assert row.state == "delivered" and row.leased_until is None
        attempts = (await db.scalars(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id == row.id)
        )).all()
        assert [a.status_code for a in attempts] == [200]  # the killed attempt left no record
