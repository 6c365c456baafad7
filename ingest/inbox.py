"""The bounded buffer between the MQTT reader and the batcher: arrival order, a pause at the top."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from ingest import metrics
from ingest.batch import Delivery


class Inbox:
    """Deliveries not yet taken into a batch.

    At `limit` messages it calls `on_full` (the reader stops reading the socket, so the broker
    holds the rest); once drained to half it calls `on_drained`. The broker's own in-flight cap is
    no bound on memory (PITFALLS): this is.
    """

    def __init__(self, limit: int, on_full: Callable[[], None], on_drained: Callable[[], None]) -> None:
        self.items: deque[Delivery] = deque()
        self.bytes = 0
        self.limit = max(limit, 1)
        self.full = False
        self._low = self.limit // 2
        self._on_full = on_full
        self._on_drained = on_drained
        self._arrived = asyncio.Event()

    def __len__(self) -> int:
        return len(self.items)

    def push(self, delivery: Delivery) -> None:
        self.items.append(delivery)
        self.bytes += len(delivery.payload)
        if not self._arrived.is_set():
            self._arrived.set()
        if len(self.items) >= self.limit and not self.full:
            self.full = True
            self._on_full()

    async def wait(self) -> None:
        await self._arrived.wait()

    def take(self, max_messages: int, max_bytes: int) -> list[Delivery]:
        """The oldest deliveries, in arrival order, within a message and a byte budget (≥ 1)."""
        items = self.items
        if len(items) <= max_messages and self.bytes <= max_bytes:
            out = list(items)
            items.clear()
            self.bytes = 0
        else:
            out, size, popleft = [], 0, items.popleft
            while items and len(out) < max_messages and (size < max_bytes or not out):
                delivery = popleft()
                out.append(delivery)
                size += len(delivery.payload)
            self.bytes -= size
        if not items:
            self._arrived.clear()
        if self.full and len(items) <= self._low:
            self.full = False
            self._on_drained()
        metrics.QUEUE.set(len(items))
        return out

    def clear(self) -> None:
        """Forget everything (a lost connection: none of it can be acknowledged any more)."""
        self.items.clear()
        self.bytes = 0
        self.full = False
        self._arrived.clear()
        metrics.QUEUE.set(0)
