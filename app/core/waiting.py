"""`wait_any`: the one way a loop sleeps until woken, stopped, or its period is up."""

from __future__ import annotations

import asyncio
import contextlib


async def wait_any(*events: asyncio.Event, within: float | None = None) -> bool:
    """Wait until one of `events` is set or `within` seconds pass; True when an event was set.

    An event already set returns at once. The waiters are always cleaned up, also when the
    caller is cancelled, so a loop calling this forever leaves no tasks behind.
    """
    if not events:
        raise ValueError("wait_any needs at least one event")
    if any(event.is_set() for event in events):
        return True
    if len(events) == 1:  # the common "sleep unless stopped": no extra task
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(events[0].wait(), within)
        return events[0].is_set()
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return any(event.is_set() for event in events)
