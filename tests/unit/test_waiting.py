"""`wait_any`: woken by the first event, by the time limit, never leaving waiters behind."""

from __future__ import annotations

import asyncio

import pytest

from app.core.waiting import wait_any


def _tasks() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def test_the_first_event_set_wakes_it() -> None:
    a, b, c = asyncio.Event(), asyncio.Event(), asyncio.Event()
    before = _tasks()
    asyncio.get_running_loop().call_later(0.01, b.set)
    assert await wait_any(a, b, c, within=30) is True
    await asyncio.sleep(0)  # let the cancelled waiters finish
    assert (a.is_set(), b.is_set(), c.is_set()) == (False, True, False)
    assert _tasks() == before


@pytest.mark.parametrize("count", [1, 3])
async def test_the_time_limit_ends_it_with_false(count: int) -> None:
    events = [asyncio.Event() for _ in range(count)]
    before = _tasks()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await wait_any(*events, within=0.05) is False
    assert loop.time() - started >= 0.05
    await asyncio.sleep(0)
    assert _tasks() == before


async def test_an_event_already_set_returns_at_once() -> None:
    stop = asyncio.Event()
    stop.set()
    assert await wait_any(asyncio.Event(), stop, within=None) is True


async def test_cancelling_the_caller_cancels_its_waiters() -> None:
    a, b = asyncio.Event(), asyncio.Event()
    before = _tasks()
    caller = asyncio.create_task(wait_any(a, b))
    await asyncio.sleep(0.01)
    assert len(_tasks() - before) == 3  # the caller and one waiter per event
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await asyncio.sleep(0)
    assert _tasks() == before


async def test_it_needs_an_event() -> None:
    with pytest.raises(ValueError, match="at least one event"):
        await wait_any(within=1)
