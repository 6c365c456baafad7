"""Audit checkpoints: every interval, verify the chain since the last checkpoint and publish its head
to the log and, signed like alert webhooks, to COLDCHAIN_AUDIT_CHECKPOINT_URL: copies of the head
that whoever holds the database cannot rewrite, against which `audit verify --head` checks later."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.webhooks.delivery import DeliveryConfig, make_client, post_signed
from alerts.webhooks.signing import secret_key
from app.core.audit_verify import KeptHead, VerifyResult, verify_chain
from app.core.db import make_engine, make_sessionmaker, plain_url
from app.core.models import utcnow
from app.core.settings import Settings
from app.core.waiting import wait_any

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
# (url, secrets, message id, time, body) → None when delivered, else why not.
Sender = Callable[[str, list[str], str, datetime, bytes], Awaitable[str | None]]
# Among several alerts workers, the one holding this session lock publishes ("ckpt").
LEADER_LOCK = 0x636B7074

CHECKPOINTS = Counter(
    "coldchain_audit_checkpoints_total", "Audit checkpoints taken",
    # published; logged (no URL set); broken (the check failed); failed (not delivered); error
    ["outcome"],
)
HEAD_ID = Gauge("coldchain_audit_head_id", "Id of the audit chain's head at the last checkpoint")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    at: datetime
    result: VerifyResult
    previous: KeptHead | None  # the head of the last good checkpoint, now checked again
    publisher: str
    message_id: str = field(default_factory=lambda: f"ckpt_{uuid.uuid4().hex}")

    def body(self) -> bytes:
        r = self.result
        data: dict[str, Any] = {
            "ok": r.ok, "head_id": r.head_id, "head_hash": r.head_hash,
            "verified_records": r.checked, "problem": r.problem, "broken_id": r.broken_id,
            "missing_records": r.missing,
            "previous_head_id": self.previous.id if self.previous else None,
            "previous_head_hash": self.previous.hash.hex() if self.previous else None,
            "publisher": self.publisher,
        }
        return orjson.dumps({"type": "audit.checkpoint", "timestamp": self.at.isoformat(),
                             "data": data})

    def describe(self) -> str:
        r = self.result
        if not r.ok:
            return f"audit checkpoint: chain BROKEN at record #{r.broken_id}: {r.problem}"
        if r.head_id is None:
            return "audit checkpoint: no records yet"
        return (f"audit checkpoint: head #{r.head_id} sha256 {r.head_hash} "
                f"({r.checked} new records verified; keep it: --head {r.head_id}:{r.head_hash})")


class Checkpointer:
    """Verifies incrementally from its last good checkpoint; after a failed check it keeps that
    head, so every later checkpoint reports the problem again until someone looks."""

    def __init__(self, maker: async_sessionmaker[AsyncSession], *, clock: Clock = utcnow) -> None:
        self.maker = maker
        self.clock = clock
        self.kept: KeptHead | None = None
        self.publisher = f"{socket.gethostname()}:{os.getpid()}"

    async def take(self) -> Checkpoint:
        async with self.maker() as session:
            result = await verify_chain(session, kept=self.kept, since_kept=True)
        checkpoint = Checkpoint(self.clock(), result, self.kept, self.publisher)
        if result.ok and result.head_id is not None and result.head_hash is not None:
            self.kept = KeptHead(result.head_id, bytes.fromhex(result.head_hash))
        return checkpoint


class _Leadership:
    """A session advisory lock on a connection of its own: held while the connection lives."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn: Any = None
        self.leading = False

    async def check(self) -> bool:
        try:
            if self.conn is None or self.conn.is_closed():
                self.leading = False
                self.conn = await asyncpg.connect(self.dsn)
            got = bool(await self.conn.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK))
            if got and self.leading:  # re-entrant: give back the extra hold just taken
                await self.conn.execute("SELECT pg_advisory_unlock($1)", LEADER_LOCK)
            self.leading = got
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("audit checkpoints: leadership unknown (%s)", exc)
            await self.close()
        return self.leading

    async def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                await self.conn.close(timeout=2)
        self.conn, self.leading = None, False


async def publish(checkpoint: Checkpoint, settings: Settings, send: Sender) -> str:
    """Log the checkpoint and POST it; the outcome label."""
    (log.info if checkpoint.result.ok else log.error)("%s", checkpoint.describe())
    if checkpoint.result.head_id is not None:
        HEAD_ID.set(checkpoint.result.head_id)
    outcome = "logged" if checkpoint.result.ok else "broken"
    if settings.audit_checkpoint_url and settings.audit_checkpoint_secret:
        error = await send(settings.audit_checkpoint_url, [settings.audit_checkpoint_secret],
                           checkpoint.message_id, checkpoint.at, checkpoint.body())
        if error is not None:
            log.warning("audit checkpoint not delivered to %s: %s (next one in %g s)",
                        settings.audit_checkpoint_url, error, settings.audit_checkpoint_interval_s)
            outcome = "failed"
        elif checkpoint.result.ok:
            outcome = "published"
    CHECKPOINTS.labels(outcome).inc()
    return outcome


async def run_checkpoints(settings: Settings, stop: asyncio.Event, *, clock: Clock = utcnow) -> None:
    """Until `stop`: a checkpoint at start and every COLDCHAIN_AUDIT_CHECKPOINT_INTERVAL_S (by the
    one alerts worker holding the leader lock)."""
    if settings.audit_checkpoint_secret:
        secret_key(settings.audit_checkpoint_secret)  # a malformed secret fails at start-up
    database_url = settings.database_url or ""
    engine = make_engine(database_url, pool_size=1)
    checkpointer = Checkpointer(make_sessionmaker(engine), clock=clock)
    leadership = _Leadership(plain_url(database_url))
    # The operator's own receiver: private addresses allowed (it is not a site's URL).
    config = DeliveryConfig(timeout_s=settings.webhook_timeout_s, allow_private=True)
    try:
        async with make_client(config) as client:

            async def send(url: str, secrets_: list[str], msg_id: str, at: datetime,
                           body: bytes) -> str | None:
                return await post_signed(client, url, secrets_, msg_id, at, body)

            while not stop.is_set():
                if await leadership.check():
                    try:
                        await publish(await checkpointer.take(), settings, send)
                    except Exception:  # e.g. the database restarting: logged, counted, next period
                        log.exception("audit checkpoint failed")
                        CHECKPOINTS.labels("error").inc()
                await wait_any(stop, within=settings.audit_checkpoint_interval_s)
    finally:
        await leadership.close()
        await engine.dispose()
