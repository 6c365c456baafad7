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

from app.core.listen import Listener

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

    def __init__(self, database_url: str, *, retry_s: float = 1.0, max_retry_s: float = 30.0) -> None:
        self._listener = Listener(database_url, CHANNEL, self._on_notify, on_gap=self._on_gap,
                                  retry_s=retry_s, max_retry_s=max_retry_s)
        self._subs: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self.listening = self._listener.listening

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        sub = Subscription()
        self._subs.add(sub)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._listener.run(), name="coldchain-stream-listener")
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

    def _on_notify(self, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            log.warning("ignoring a malformed %s notification", CHANNEL)
            return
        self.publish(message)

    def _on_gap(self) -> None:
        # Whatever was notified while not listening is lost: subscribers refetch.
        self.publish(RESET)
