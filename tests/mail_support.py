"""Mail test helpers: an aiosmtpd server in the test's own event loop (plain, STARTTLS or SMTPS with
a CA made for the run), scripted replies, and users who opted in."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import uuid
import warnings
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from typing import Any

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alerts.mail.delivery import MailConfig, deliver_due
from alerts.mail.outbox import enqueue_many
from app.core.db import make_sessionmaker
from app.core.models import Alert, AlertEvent, User, utcnow
from app.core.smtp import SmtpAddress
from tests.factories import T0

SENDER = "coldchain@alerts.example.org"
BASE_URL = "https://coldchain.example.org"


@dataclass
class Inbox:
    """The server's side: what arrived, and replies to give instead of accepting (in order)."""

    messages: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    rcpt_replies: deque[str] = field(default_factory=deque)
    data_replies: deque[str] = field(default_factory=deque)
    refuse: dict[str, str] = field(default_factory=dict)  # recipient → reply, every time
    logins: list[tuple[str, str]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook names)
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        if self.rcpt_replies:
            return self.rcpt_replies.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if self.data_replies:
            return self.data_replies.popleft()
        assert isinstance(envelope.content, bytes)
        message = BytesParser(policy=default).parsebytes(envelope.content)
        assert isinstance(message, EmailMessage)
        self.messages.append((envelope, message))
        self.arrived.set()
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"alerts", b"s3cret")
        if ok:
            self.logins.append((data.login.decode(), mechanism))
        return AuthResult(success=ok)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for e, m in self.messages if address in e.rcpt_tos]


@dataclass(frozen=True)
class Tls:
    """A CA made for the test run, a server certificate for 127.0.0.1, and both contexts."""

    server: ssl.SSLContext
    client: ssl.SSLContext

    @classmethod
    def make(cls) -> Tls:
        ca = trustme.CA()
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
        client = ssl.create_default_context()
        ca.configure_trust(client)
        return cls(server, client)


@contextlib.asynccontextmanager
async def smtp_server(
    inbox: Inbox, *, security: str = "plain", tls: Tls | None = None, auth: bool = False
) -> AsyncIterator[int]:
    """Serve on 127.0.0.1 (a free port, yielded) until the block ends."""
    kw: dict[str, Any] = {"hostname": "mail.test"}
    if security == "starttls":
        assert tls is not None
        kw.update(tls_context=tls.server, require_starttls=True)
    if auth:
        # aiosmtpd does not see implicit TLS as TLS (its check is for STARTTLS): allow AUTH there.
        kw.update(authenticator=inbox.authenticate, auth_required=True,
                  auth_require_tls=security != "tls")
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        with warnings.catch_warnings():  # the implicit-TLS case above: the transport is TLS
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return SMTP(inbox, loop=loop, **kw)

    server = await loop.create_server(
        protocol, "127.0.0.1", 0,
        ssl=tls.server if security == "tls" and tls else None,
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def config(port: int, *, security: str = "plain", tls: Tls | None = None, **over: Any) -> MailConfig:
    server = SmtpAddress("127.0.0.1", port, security)  # type: ignore[arg-type]
    return MailConfig(server=over.pop("server", server), sender=SENDER, base_url=BASE_URL,
                      timeout_s=5.0, tls_context=tls.client if tls else None, **over)


async def deliver(engine: AsyncEngine, cfg: MailConfig, **kw: Any) -> int:
    """One delivery cycle now (or at `now=`)."""
    return await deliver_due(make_sessionmaker(engine), cfg, kw.pop("now", None) or utcnow(),
                             jitter=lambda: 0.5, **kw)


async def person(
    session: AsyncSession, email: str, role: str = "coordinator", *, site_id: str | None = None,
    notify: bool = True, min_severity: str = "critical", disabled: bool = False,
) -> User:
    """A user as an admin would create one, opted in to mail (committed)."""
    user = User(email=email, name=email.split("@")[0], role=role,
                site_id=uuid.UUID(site_id) if site_id else None, password_hash="not used here",
                notify_email=notify, notify_min_severity=min_severity, disabled=disabled)
    session.add(user)
    await session.commit()
    return user


async def alert_event(
    session: AsyncSession, shipment_id: str, type_: str, *, severity: str, kind: str = "shock",
    data: dict[str, object] | None = None,
) -> AlertEvent:
    """An alert and one event of it, queued for mail as the engine would (committed)."""
    alert = Alert(shipment_id=uuid.UUID(shipment_id), kind=kind, severity=severity, state="open",
                  opened_at=T0 + timedelta(hours=2), condition_since=T0 + timedelta(hours=1),
                  retroactive=False, message=f"{kind} on test shipment")
    session.add(alert)
    await session.flush()
    event = AlertEvent(alert_id=alert.id, type=type_, actor="system",
                       data={"severity": severity, **(data or {})})
    session.add(event)
    await enqueue_many(session, [event])
    await session.commit()
    return event
