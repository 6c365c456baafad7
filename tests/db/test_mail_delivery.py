"""Mail delivery to a real SMTP server (aiosmtpd, in-process): content, retries, permanent
rejection, expiry, leases, STARTTLS and SMTPS with login."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alerts.mail import store
from app.core.db import make_sessionmaker
from app.core.models import MailAttempt, MailDelivery, User, utcnow
from app.core.smtp import SmtpAddress
from tests import factories
from tests.mail_support import (
    BASE_URL,
    SENDER,
    Inbox,
    Tls,
    alert_event,
    config,
    deliver,
    person,
    smtp_server,
)
from tests.webhooks_support import shipment


async def _rows(db: AsyncSession) -> list[MailDelivery]:
    stmt = select(MailDelivery).order_by(MailDelivery.recipient)
    return list(await db.scalars(stmt.execution_options(populate_existing=True)))


async def _log(db: AsyncSession, delivery_id: uuid.UUID) -> list[tuple[str, int | None]]:
    rows = await db.scalars(select(MailAttempt).where(MailAttempt.delivery_id == delivery_id)
                            .order_by(MailAttempt.id))
    return [(a.outcome, a.reply_code) for a in rows]


async def _one_mail(client: httpx.AsyncClient, db: AsyncSession, *emails: str) -> str:
    """A critical alert opened on SHP-1 for coordinators who opted in; the shipment's id."""
    origin = await factories.site(client, "Leiden CTU", "NL")
    destination = await factories.site(client, "Boston infusion centre", "US")
    sid = str((await shipment(client, origin, destination, "SHP-1"))["id"])
    for email in emails or ("coord@example.org",):
        await person(db, email)
    await alert_event(db, sid, "opened", severity="critical")
    return sid


async def test_the_mail_reaches_the_server_with_subject_both_parts_and_the_link(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine,
) -> None:
    sid = await _one_mail(client, db, "coord@example.org", "second@example.org")
    inbox = Inbox()
    async with smtp_server(inbox) as port:
        assert await deliver(engine, config(port)) == 2
    rows = await _rows(db)
    assert [(r.state, r.attempts, r.last_reply_code) for r in rows] == [("delivered", 1, 250)] * 2
    assert sorted(e.rcpt_tos[0] for e, _ in inbox.messages) == [
        "coord@example.org", "second@example.org"]  # one envelope each, in any order
    envelope, msg = next((e, m) for e, m in inbox.messages if e.rcpt_tos == ["coord@example.org"])
    assert envelope.mail_from == SENDER
    assert msg["Subject"].strip() == "[CRITICAL] SHP-1: Shock above limit (shock): alert opened"
    assert (msg["From"], msg["To"]) == (SENDER, "coord@example.org")
    assert msg["Message-ID"] == f"<{rows[0].id.hex}.alert@alerts.example.org>"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    page = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    link = f"{BASE_URL}/#/shipments/{sid}"
    lines = text.splitlines()
    assert "Shipment: SHP-1" in lines and "Since:    2026-11-20 09:00 UTC (device time)" in lines
    assert lines[-1] == f"Open the shipment: {link}"
    assert f'<a href="{link}">Open shipment SHP-1</a>' in page
    assert inbox.to("second@example.org")[0]["Subject"].strip() == msg["Subject"].strip()
    assert await _log(db, rows[0].id) == [("sent", 250)]


async def test_a_temporary_refusal_is_retried_with_backoff_then_sent(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine,
) -> None:
    await _one_mail(client, db)
    inbox = Inbox()
    inbox.rcpt_replies.append("451 4.3.0 mailbox busy, try later")
    now = utcnow()
    async with smtp_server(inbox) as port:
        assert await deliver(engine, config(port), now=now) == 1
        (row,) = await _rows(db)
        assert (row.state, row.attempts, row.last_reply_code, row.last_error) == (
            "pending", 1, 451, "451 4.3.0 mailbox busy, try later")
        # The webhooks' backoff: 5 s after the first failure (jitter 0.5: no spread).
        assert row.next_attempt_at - now == pytest.approx(timedelta(seconds=5), abs=timedelta(
            seconds=1))
        assert await deliver(engine, config(port), now=now + timedelta(seconds=1)) == 0  # not due
        assert inbox.messages == []
        assert await deliver(engine, config(port), now=now + timedelta(seconds=7)) == 1
    (row,) = await _rows(db)
    assert (row.state, row.attempts, row.last_error) == ("delivered", 2, None)
    assert await _log(db, row.id) == [("deferred", 451), ("sent", 250)]
    assert len(inbox.messages) == 1


async def test_a_permanent_refusal_fails_at_once(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine,
) -> None:
    await _one_mail(client, db, "gone@example.org", "coord@example.org")
    inbox = Inbox(refuse={"gone@example.org": "550 5.1.1 no such mailbox"})
    inbox.data_replies.append("554 5.7.1 message refused")  # the other one's first DATA
    async with smtp_server(inbox) as port:
        assert await deliver(engine, config(port)) == 2
    coord, gone = await _rows(db)
    assert (gone.state, gone.attempts, gone.last_reply_code, gone.last_error) == (
        "failed", 1, 550, "550 5.1.1 no such mailbox")
    assert (coord.state, coord.last_reply_code) == ("failed", 554)
    assert await _log(db, gone.id) == [("rejected", 550)]
    assert await _log(db, coord.id) == [("rejected", 554)]
    assert inbox.messages == []


async def test_a_server_that_cannot_be_reached_is_tried_again_later(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine,
) -> None:
    await _one_mail(client, db, "a@example.org", "b@example.org")
    inbox = Inbox()
    async with smtp_server(inbox) as port:
        pass  # the port is free again: connections are refused
    now = utcnow()
    assert await deliver(engine, config(port), now=now) == 2
    rows = await _rows(db)
    assert [(r.state, r.attempts, r.last_reply_code) for r in rows] == [("pending", 1, None)] * 2
    assert all((r.last_error or "").startswith("SMTPConnectError") for r in rows), rows[0].last_error
    assert [await _log(db, r.id) for r in rows] == [[("connection_error", None)]] * 2


async def test_an_unsent_mail_expires_a_day_after_its_event(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine,
) -> None:
    await _one_mail(client, db)
    inbox = Inbox()
    async with smtp_server(inbox) as port:
        assert await deliver(engine, config(port), now=utcnow() + timedelta(hours=24, minutes=1)) == 0
    (row,) = await _rows(db)
    assert (row.state, row.attempts) == ("failed", 0)
    assert row.last_error == ("expired: not sent within 24 h of the event "
                              "(was COLDCHAIN_SMTP_URL unset?)")
    assert inbox.messages == []


async def test_a_lease_of_a_worker_that_died_runs_out_and_the_mail_is_sent_again(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine,
) -> None:
    await _one_mail(client, db)
    cfg = config(9)
    now = utcnow()
    async with make_sessionmaker(engine)() as session, session.begin():
        (claim,) = await store.claim(session, now, limit=10, lease=cfg.lease)
    inbox = Inbox()
    async with smtp_server(inbox) as port:
        assert await deliver(engine, config(port), now=now + timedelta(seconds=1)) == 0  # leased
        assert await deliver(engine, config(port), now=now + cfg.lease) == 1
    (row,) = await _rows(db)
    assert (row.state, row.attempts) == ("delivered", 2)
    assert len(inbox.messages) == 1
    # The first worker comes back and records its attempt late: logged, the row stays delivered.
    async with make_sessionmaker(engine)() as session, session.begin():
        late = store.Outcome(claim, now, now, None, "connection reset", 0.1, "connection_error")
        assert await store.record(session, [late], lambda: 0.5) == []
    (row,) = await _rows(db)
    assert row.state == "delivered"
    assert await _log(db, row.id) == [("sent", 250), ("connection_error", None)]


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_starttls_and_implicit_tls_with_login_against_a_certificate_of_a_test_ca(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine, security: str,
) -> None:
    await _one_mail(client, db)
    tls, inbox = Tls.make(), Inbox()
    async with smtp_server(inbox, security=security, tls=tls, auth=True) as port:
        server = SmtpAddress("127.0.0.1", port, security, "alerts", "s3cret")  # type: ignore[arg-type]
        assert await deliver(engine, config(port, tls=tls, server=server)) == 1
        (row,) = await _rows(db)
        assert row.state == "delivered", row.last_error
        assert [m["To"] for m in inbox.to("coord@example.org")] == ["coord@example.org"]
        assert [login for login, _ in inbox.logins] == ["alerts"]


async def test_a_certificate_the_client_does_not_trust_is_a_retried_connection_failure(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine,
) -> None:
    await _one_mail(client, db)
    inbox = Inbox()
    async with smtp_server(inbox, security="tls", tls=Tls.make()) as port:
        # The client trusts another CA than the one that signed the server's certificate.
        assert await deliver(engine, config(port, security="tls", tls=Tls.make())) == 1
    (row,) = await _rows(db)
    assert (row.state, row.attempts) == ("pending", 1)
    assert "CERTIFICATE_VERIFY_FAILED" in (row.last_error or ""), row.last_error
    assert inbox.messages == []


async def test_the_mail_log_shows_each_mail_with_its_attempts_and_reply_codes(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine,
) -> None:
    await _one_mail(client, db, "gone@example.org", "coord@example.org")
    inbox = Inbox(refuse={"gone@example.org": "550 5.1.1 no such mailbox"})
    inbox.rcpt_replies.append("452 4.2.2 mailbox full")  # the other one, once
    now = utcnow()
    async with smtp_server(inbox) as port:
        await deliver(engine, config(port), now=now)
        await deliver(engine, config(port), now=now + timedelta(seconds=7))
    failed = (await client.get("/api/v1/notifications/mail", params={"state": "failed"})).json()
    (item,) = failed["items"]
    assert (item["recipient"], item["state"], item["last_reply_code"], item["last_error"],
            item["event"], item["next_attempt_at"]) == (
        "gone@example.org", "failed", 550, "550 5.1.1 no such mailbox", "opened", None)
    assert [(a["outcome"], a["reply_code"], a["reply"]) for a in item["attempts"]] == [
        ("rejected", 550, "550 5.1.1 no such mailbox")]
    everything = (await client.get("/api/v1/notifications/mail")).json()["items"]
    sent = next(i for i in everything if i["recipient"] == "coord@example.org")
    assert [(a["outcome"], a["reply_code"]) for a in sent["attempts"]] == [
        ("deferred", 452), ("sent", 250)]
    assert sent["subject"] == "[CRITICAL] SHP-1: Shock above limit (shock): alert opened"
    one = (await client.get(f"/api/v1/notifications/mail/{sent['id']}")).json()
    assert one == sent
    missing = await client.get(f"/api/v1/notifications/mail/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_starttls_required_never_falls_back_to_plain_text(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine,
) -> None:
    await _one_mail(client, db)
    inbox = Inbox()
    async with smtp_server(inbox) as port:  # offers no STARTTLS
        assert await deliver(engine, config(port, security="starttls", tls=Tls.make())) == 1
    (row,) = await _rows(db)
    assert (row.state, row.attempts) == ("pending", 1)
    assert "STARTTLS" in (row.last_error or ""), row.last_error
    assert inbox.messages == []


async def test_a_user_disabled_or_opted_out_after_the_event_is_not_mailed(
    client: httpx.AsyncClient, db: AsyncSession, engine: AsyncEngine,
) -> None:
    await _one_mail(client, db, "off@example.org", "gone@example.org", "on@example.org")
    users = {u.email: u for u in await db.scalars(select(User))}
    users["off@example.org"].notify_email = False
    users["gone@example.org"].disabled = True
    await db.commit()
    inbox = Inbox()
    async with smtp_server(inbox) as port:
        assert await deliver(engine, config(port)) == 1
    assert [(r.recipient, r.state, r.attempts, r.last_error) for r in await _rows(db)] == [
        ("gone@example.org", "cancelled", 0, store.UNWANTED),
        ("off@example.org", "cancelled", 0, store.UNWANTED),
        ("on@example.org", "delivered", 1, None),
    ]
    assert [e.rcpt_tos for e, _ in inbox.messages] == [["on@example.org"]]
