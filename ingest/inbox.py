"""The buffer between the MQTT reader and the batcher: arrival order, bounded in bytes."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable

from ingest import metrics
from ingest.batch import Message

# Python objects a delivery costs besides its payload (tuple, bytes headers, topic, packet id):
# ~210 bytes measured; counted so that a flood of tiny messages is bounded too.
MESSAGE_OVERHEAD = 256


def held_bytes(messages: Iterable[Message]) -> int:
    """What messages count against the buffer budget."""
    total = 0
    for message in messages:
        total += len(message.payload) + MESSAGE_OVERHEAD
    return total


class Inbox:
    """Messages not yet taken into a batch, and the budget of every message not yet acknowledged.

    `held` counts each message from its arrival until `release` (its batch acknowledged, or given
    up): the inbox and the batches being assembled and written. At `budget` bytes it calls
    `on_full` (the reader stops reading the socket: TCP then holds the broker back); once the
    acknowledgements bring it down to half it calls `on_drained`. The broker's in-flight limits
    count messages, not bytes, so they are no bound on memory (PITFALLS): this is.
    """

    def __init__(self, budget: int, on_full: Callable[[], None], on_drained: Callable[[], None]) -> None:
        self.items: deque[Message] = deque()
        self.bytes = 0  # payload bytes in the inbox (the batcher's size bound)
        self.held = 0
        self.budget = max(budget, 1)
        self.full = False
        self._low = self.budget // 2
        self._on_full = on_full
        self._on_drained = on_drained
        self._arrived = asyncio.Event()

    def __len__(self) -> int:
        return len(self.items)

    def push(self, message: Message) -> None:
        self.items.append(message)
        size = len(message.payload)
        self.bytes += size
        self.held += size + MESSAGE_OVERHEAD
        if not self._arrived.is_set():
            self._arrived.set()
        if self.held >= self.budget and not self.full:
            self.full = True
            metrics.PAUSES.inc()
            self._on_full()

    async def wait(self) -> None:
        await self._arrived.wait()

    def take(self, max_messages: int, max_bytes: int) -> list[Message]:
        """The oldest messages, in arrival order, within a message and a payload budget (≥ 1)."""
        items = self.items
        if len(items) <= max_messages and self.bytes <= max_bytes:
            out = list(items)
            items.clear()
            self.bytes = 0
        else:
            out, size, popleft = [], 0, items.popleft
            while items and len(out) < max_messages and (size < max_bytes or not out):
                message = popleft()
                out.append(message)
                size += len(message.payload)
            self.bytes -= size
        if not items:
            self._arrived.clear()
        metrics.QUEUE.set(len(items))
        metrics.BUFFER_BYTES.set(self.held)
        return out

    def release(self, messages: Iterable[Message]) -> None:
        """Taken messages are done with (acknowledged, or left to the broker to redeliver)."""
        self.held -= held_bytes(messages)
        metrics.BUFFER_BYTES.set(self.held)
        if self.full and self.held <= self._low:
            self.full = False
            self._on_drained()

    def clear(self) -> None:
        """Forget what was not taken (a lost connection: none of it can be acknowledged any more).

        The reader goes with the connection; the next one starts reading, and pauses again at
        the budget (taken batches still count until they are released).
        """
        self.held -= held_bytes(self.items)
        self.items.clear()
        self.bytes = 0
        self.full = False
        self._arrived.clear()
        metrics.QUEUE.set(0)
        metrics.BUFFER_BYTES.set(self.held)
