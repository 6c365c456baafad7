"""Mail delivery loop (the only aiosmtplib user): claim due rows, render, send over SMTP, record."""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.mail import store
from alerts.mail.compose import build, notice_from_json
from alerts.mail.metrics import (
    ATTEMPT_DURATION,
    ATTEMPTS,
    CYCLE_ERRORS,
    DELIVERIES,
    OLDEST_PENDING_AGE,
    QUEUE_DEPTH,
)
from alerts.mail.outbox import CHANNEL
from alerts.webhooks import retry
from app.core.db import make_engine, make_sessionmaker
from app.core.listen import Listener
from app.core.models import utcnow
from app.core.settings import Settings
from app.core.smtp import SmtpAddress
from app.core.waiting import wait_any

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
SessionFactory = async_sessionmaker[AsyncSession]
# Failures of the session, not of one message (connect, TLS, greeting, login): always retried.
_SESSION_ERRORS = (aiosmtplib.SMTPException, OSError)


@dataclass(frozen=True, slots=True)
class MailConfig:
    server: SmtpAddress
    sender: str
    base_url: str  # links in mails: COLDCHAIN_PUBLIC_URL
    timeout_s: float = 30.0  # each SMTP command, and one whole message
    batch: int = 20  # mails sent over one connection per cycle
    loops: int = 2  # connections in use at once
    poll_s: float = 5.0  # fallback when no NOTIFY arrives (and for rows whose retry time came)
    stats_every_s: float = 5.0
    tls_context: ssl.SSLContext | None = field(default=None, repr=False)  # None: system CAs

    @classmethod
    def from_settings(cls, settings: Settings, **over: object) -> MailConfig | None:
        """None when COLDCHAIN_SMTP_URL is unset: e-mail notifications off."""
        if settings.smtp is None or not settings.mail_from:
            return None
        return cls(server=settings.smtp, sender=settings.mail_from,
                   base_url=settings.dashboard_url, timeout_s=settings.smtp_timeout_s,
                   **over)  # type: ignore[arg-type]

    @property
    def lease(self) -> timedelta:
        return retry.lease_for(timeout_s=self.timeout_s, rounds=self.batch)

    def client(self) -> aiosmtplib.SMTP:
        s = self.server
        return aiosmtplib.SMTP(
            hostname=s.host, port=s.port, username=s.username, password=s.password,
            use_tls=s.security == "tls", start_tls=s.security == "starttls",
            tls_context=self.tls_context, timeout=self.timeout_s,
        )


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip(" >") or "coldchain.invalid"


def classify(exc: BaseException) -> tuple[str, int | None, str]:
    """(outcome, reply code, what the log says) of a failed send: a 5xx reply to this message
    is permanent; 4xx, timeouts and broken connections are retried."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    if isinstance(exc, (aiosmtplib.SMTPTimeoutError, TimeoutError)):
        return "timeout", None, f"{type(exc).__name__}: {exc}"
    if isinstance(exc, aiosmtplib.SMTPResponseException) and not isinstance(
            exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPHeloError
            | aiosmtplib.SMTPAuthenticationError):
        kind = "rejected" if 500 <= exc.code < 600 else "deferred"
        return kind, exc.code, f"{exc.code} {exc.message}"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return "connection_error", exc.code, f"{type(exc).__name__}: {exc.code} {exc.message}"
    return "connection_error", None, f"{type(exc).__name__}: {exc}"


async def _send(
    smtp: aiosmtplib.SMTP, claim: store.Claim, config: MailConfig, clock: Clock
) -> tuple[store.Outcome, bool]:
    """One mail; also whether the failure was in making the session (connect, TLS, login)."""
    attempted_at, started = clock(), time.perf_counter()
    code: int | None = None
    connecting = False
    try:
        async with asyncio.timeout(config.timeout_s * 4):  # connect, EHLO, TLS, login, the mail
            if not smtp.is_connected:
                connecting = True
                await smtp.connect()
                connecting = False
            message = build(
                notice_from_json(claim.notice), sender=config.sender, to=[claim.recipient],
                message_id=f"<{claim.id.hex}.alert@{_domain(config.sender)}>",
                date=claim.created_at, base_url=config.base_url,
            )
            _errors, reply = await smtp.send_message(
                message, sender=config.sender, recipients=[claim.recipient])
        kind, code = "sent", 250  # DATA accepted (RFC 5321: 250)
    except (*_SESSION_ERRORS, TimeoutError) as exc:
        kind, code, reply = classify(exc)
        if kind in ("timeout", "connection_error"):
            smtp.close()  # a fresh connection for the next mail
    except Exception as exc:  # one bad mail never stops the loop: logged, counted, retried
        log.exception("mail %s failed unexpectedly", claim.id)
        kind, reply = "error", f"{type(exc).__name__}: {exc}"
        smtp.close()
    duration = time.perf_counter() - started
    outcome = store.Outcome(claim, attempted_at, attempted_at + timedelta(seconds=duration), code,
                            reply, duration, kind)
    return outcome, connecting


async def send_all(config: MailConfig, claims: list[store.Claim], clock: Clock) -> list[store.Outcome]:
    """Send the claims one after the other over one connection, made again after a break; when
    no session can be made, the rest of the claims share that failure (and their retry)."""
    smtp = config.client()
    outcomes: list[store.Outcome] = []
    try:
        for i, claim in enumerate(claims):
            outcome, session_failed = await _send(smtp, claim, config, clock)
            outcomes.append(outcome)
            if session_failed:
                outcomes += [replace(outcome, claim=c) for c in claims[i + 1:]]
                break
    finally:
        if smtp.is_connected:
            try:
                await smtp.quit()
            except _SESSION_ERRORS:
                smtp.close()
    for outcome in outcomes:
        ATTEMPTS.labels(outcome.kind).inc()
        ATTEMPT_DURATION.observe(outcome.duration_s)
    return outcomes


async def deliver_due(
    session_factory: SessionFactory, config: MailConfig, now: datetime, *,
    jitter: Callable[[], float] = random.random,
) -> int:
    """One cycle: expire stale rows, cancel unwanted ones, lease due ones, send, record; mails
    attempted."""
    async with session_factory() as session, session.begin():  # the lease, committed
        expired = await store.expire(session, now)
        cancelled = await store.cancel_unwanted(session, now)
        claims = await store.claim(session, now, limit=config.batch, lease=config.lease)
    DELIVERIES.labels("failed").inc(expired)
    DELIVERIES.labels("cancelled").inc(cancelled)
    if not claims:
        return 0
    started = time.perf_counter()

    def clock() -> datetime:
        return now + timedelta(seconds=time.perf_counter() - started)

    outcomes = await send_all(config, claims, clock)
    async with session_factory() as session, session.begin():
        finals = await store.record(session, outcomes, jitter)
    for final in finals:
        DELIVERIES.labels(final).inc()
    return len(claims)


async def _cycle_loop(
    session_factory: SessionFactory, config: MailConfig, now: Clock, wake: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    while not stop.is_set():
        wake.clear()
        try:
            attempted = await deliver_due(session_factory, config, now())
        except Exception:  # e.g. the database restarting: logged, counted, tried again shortly
            log.exception("mail delivery cycle failed")
            CYCLE_ERRORS.inc()
            attempted = 0
        if attempted < config.batch:  # drained: wait for a NOTIFY or the poll
            await wait_any(stop, wake, within=config.poll_s)


async def _stats_loop(
    session_factory: SessionFactory, now: Clock, config: MailConfig, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        try:
            async with session_factory() as session:
                depth, oldest = await store.queue_stats(session, now())
            QUEUE_DEPTH.set(depth)
            OLDEST_PENDING_AGE.set(oldest)
        except Exception:  # metrics must not stop delivery
            log.exception("mail queue statistics failed")
            CYCLE_ERRORS.inc()
        await wait_any(stop, within=config.stats_every_s)


async def run_mail(
    settings: Settings, stop: asyncio.Event, *, now: Clock = utcnow,
    tls_context: ssl.SSLContext | None = None,
) -> None:
    """Send notification mails until `stop` is set; returns at once when mail is off."""
    config = MailConfig.from_settings(settings, tls_context=tls_context)
    if config is None:
        log.info("e-mail notifications off: COLDCHAIN_SMTP_URL unset")
        return
    if not settings.public_url:
        log.warning("COLDCHAIN_PUBLIC_URL unset: links in mails point at %s", config.base_url)
    database_url = settings.database_url or ""
    engine = make_engine(database_url, pool_size=config.loops + 2)
    session_factory = make_sessionmaker(engine)
    wake = asyncio.Event()
    log.info("e-mail notifications on: via %s as %s", config.server, config.sender)
    try:
        listener = Listener(database_url, CHANNEL, lambda _payload: wake.set(), on_gap=wake.set)
        async with listener.running():
            await asyncio.gather(
                *(_cycle_loop(session_factory, config, now, wake, stop)
                  for _ in range(config.loops)),
                _stats_loop(session_factory, now, config, stop),
            )
    finally:
        await engine.dispose()
