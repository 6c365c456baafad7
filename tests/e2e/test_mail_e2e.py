"""End to end: readings → the alerts role (engine, outbox, mail loop, as `coldchain alerts` runs
it) → an SMTP server's inbox; and the role with mail off."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alerts import worker
from alerts.mail.delivery import run_mail
from app.cli.main import mail_status
from app.core.db import make_sessionmaker
from app.core.handoff import enqueue_evaluation
from app.core.models import Reading
from app.core.settings import Settings
from tests.factories import shipment_setup
from tests.mail_support import BASE_URL, SENDER, Inbox, person, smtp_server


async def test_an_alert_raised_by_the_engine_reaches_the_inbox(
    settings: Settings, client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    created = await shipment_setup(client, reference="SHP-MAIL", logger_ids=("LOG-M",),
                                   packed_at=start.isoformat(), departed_at=start.isoformat(),
                                   product={"critical_max_c": 12.0})
    sid = uuid.UUID(created["id"])
    await person(db, "coordinator@example.org")  # critical alerts only (the default)
    inbox = Inbox()
    async with smtp_server(inbox) as port:
        live = settings.model_copy(update={
            "smtp_url": f"smtp://127.0.0.1:{port}", "mail_from": SENDER, "public_url": BASE_URL,
            "evaluator_period_s": 0.2})
        assert mail_status(live) == (f"e-mail notifications via 127.0.0.1:{port} (plain) "
                                     f"from {SENDER}")
        stop = asyncio.Event()
        role = asyncio.create_task(worker.run(live, stop))
        try:
            rows = [{"logger_id": "LOG-M", "ts": start + timedelta(minutes=m), "shipment_id": sid,
                     "temp_c": 15.0 if m >= 50 else 5.0, "received_at": start + timedelta(minutes=m)}
                    for m in range(0, 56, 5)]
            async with make_sessionmaker(engine)() as session, session.begin():
                await session.execute(insert(Reading).on_conflict_do_nothing(), rows)
                await enqueue_evaluation(session, sid, start)
            await asyncio.wait_for(inbox.arrived.wait(), 60)
        finally:
            stop.set()
            await asyncio.wait_for(role, 30)
    (envelope, msg), *_ = inbox.messages
    assert envelope.rcpt_tos == ["coordinator@example.org"]
    assert msg["Subject"].strip() == ("[CRITICAL] SHP-MAIL: Temperature beyond a critical limit "
                                      "(temperature_critical): alert opened")
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"Open the shipment: {BASE_URL}/#/shipments/{sid}" in text.splitlines()
    assert "Values:    peak 15 °C; range 2 to 8 °C; critical above 12 °C" in text.splitlines()


async def test_with_no_mail_server_configured_the_mail_loop_says_so_and_returns(
    settings: Settings, caplog: pytest.LogCaptureFixture,
) -> None:
    off = settings.model_copy(update={"smtp_url": None})
    assert mail_status(off) == "e-mail notifications off: COLDCHAIN_SMTP_URL unset"
    with caplog.at_level(logging.INFO, logger="alerts.mail.delivery"):
        await asyncio.wait_for(run_mail(off, asyncio.Event()), 5)  # returns without `stop`
    assert "e-mail notifications off: COLDCHAIN_SMTP_URL unset" in caplog.messages
