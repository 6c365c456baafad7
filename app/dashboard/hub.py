"""Fan-out of PostgreSQL notifications (LISTEN coldchain_stream) to the API's live subscribers.

One connection per API process listens while anyone is subscribed; each subscriber gets a bounded
queue. A subscriber that falls behind, or a listener connection that drops, gets a `reset` marker:
the client refetches what it shows, then carries on with the live events.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg

log = logging.getLogger(__name__)
CHANNEL = "coldchain_stream"
QUEUE_SIZE = 1000
RESET: dict[str, Any] = {"type": "reset"}


@dataclass(eq=False)
class Subscription:
    queue: asyncio.Queue[tuple[int, dict[str, Any]]] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )
    overflowed: bool = False


class Hub:
    """Started on the first subscriber, stopped after the last one leaves."""

    def __init__(self, dsn: str, *, retry_s: float = 1.0, max_retry_s: float = 30.0) -> None:
        self._dsn = dsn
        self._subs: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._retry_s, self._max_retry_s = retry_s, max_retry_s
        self.listening = asyncio.Event()

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        sub = Subscription()
        self._subs.add(sub)
        if self._task is None or self._task.done():
            self.listening.clear()
            self._task = asyncio.create_task(self._listen(), name="coldchain-stream-listener")
        try:
            yield sub
        finally:
            self._subs.discard(sub)
            if not self._subs and self._task is not None:
                task, self._task = self._task, None
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def publish(self, message: dict[str, Any]) -> None:
        """Hand one message to every subscriber without blocking (full queues overflow)."""
        event_id = next(self._ids)
        for sub in list(self._subs):
            if sub.overflowed:
                continue
            try:
                sub.queue.put_nowait((event_id, message))
            except asyncio.QueueFull:
                sub.overflowed = True

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            log.warning("ignoring a malformed %s notification", CHANNEL)
            return
        self.publish(message)

    async def _listen(self) -> None:
        delay = self._retry_s
        for attempt in itertools.count():
            conn: asyncpg.Connection | None = None
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self._dsn)
                conn.add_termination_listener(lambda _c, ev=lost: ev.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                self.listening.set()
                if attempt:
                    # Whatever was notified while not listening is lost: subscribers refetch.
                    self.publish(RESET)
                delay = self._retry_s
                await lost.wait()
                log.warning("stream listener connection lost; reconnecting")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("stream listener cannot connect (%s); retrying in %.0fs", exc, delay)
            finally:
                self.listening.clear()
                if conn is not None and not conn.is_closed():
                    await conn.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_retry_s)
