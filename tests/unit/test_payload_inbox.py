"""The inbox between the MQTT reader and the batcher: order, budgets, pause and resume."""

from __future__ import annotations

import pytest

from ingest.batch import Delivery, Oversized
from ingest.inbox import MESSAGE_OVERHEAD, Inbox
from ingest.mqtt import receive_maximum


def deliveries(n: int, size: int = 10) -> list[Delivery]:
    return [Delivery(b"t", bytes(size), i + 1, 0, 0.0) for i in range(n)]


def test_takes_in_arrival_order_within_message_and_byte_budgets() -> None:
    inbox = Inbox(10**6, lambda: None, lambda: None)
    for d in deliveries(10, size=100):
        inbox.push(d)
    assert [d.mid for d in inbox.take(4, 10_000)] == [1, 2, 3, 4]
    assert [d.mid for d in inbox.take(100, 250)] == [5, 6, 7]  # stops once 250 bytes are reached
    assert [d.mid for d in inbox.take(100, 1)] == [8]  # never less than one
    assert [d.mid for d in inbox.take(100, 10_000)] == [9, 10]
    assert len(inbox) == 0 and inbox.bytes == 0


def test_pauses_at_the_byte_budget_and_resumes_when_acknowledgements_halve_it() -> None:
    events: list[str] = []
    one = 1000 + MESSAGE_OVERHEAD
    inbox = Inbox(10 * one, lambda: events.append("pause"), lambda: events.append("resume"))
    batch = deliveries(9, size=1000)
    for d in batch:
        inbox.push(d)
    assert events == [] and inbox.held == 9 * one
    inbox.push(deliveries(1, size=1000)[0])
    assert events == ["pause"] and inbox.full
    taken = inbox.take(100, 10**9)
    assert events == ["pause"] and inbox.held == 10 * one  # taken, not yet acknowledged: still held
    inbox.release(taken[:4])
    assert events == ["pause"]  # 6 left: above half
    inbox.release(taken[4:5])
    assert events == ["pause", "resume"] and not inbox.full and inbox.held == 5 * one


def test_a_single_large_message_fills_the_budget_and_many_tiny_ones_do_too() -> None:
    events: list[str] = []
    inbox = Inbox(1024 * 1024, lambda: events.append("pause"), lambda: events.append("resume"))
    inbox.push(deliveries(1, size=1024 * 1024)[0])
    assert events == ["pause"]
    tiny = Inbox(1024 * 1024, lambda: events.append("tiny"), lambda: None)
    for d in deliveries(-(-1024 * 1024 // (MESSAGE_OVERHEAD + 1)), size=1):  # just over the budget
        tiny.push(d)
    assert events == ["pause", "tiny"]


def test_an_oversized_message_counts_only_the_head_it_kept() -> None:
    inbox = Inbox(10**6, lambda: None, lambda: None)
    inbox.push(Oversized(b"t", bytes(65536), 1, 0, 0.0, 5 * 1024 * 1024, bytes(32)))
    assert inbox.held == 65536 + MESSAGE_OVERHEAD


def test_clear_forgets_the_untaken_and_keeps_counting_batches_in_flight() -> None:
    events: list[str] = []
    one = 10 + MESSAGE_OVERHEAD
    inbox = Inbox(3 * one, lambda: events.append("pause"), lambda: events.append("resume"))
    for d in deliveries(3):
        inbox.push(d)
    taken = inbox.take(1, 10**6)
    inbox.clear()
    assert (len(inbox), inbox.bytes, inbox.held, inbox.full, events) == (0, 0, one, False, ["pause"])
    for d in deliveries(2):  # the next connection reads again, and pauses again at the budget
        inbox.push(d)
    assert events == ["pause", "pause"]
    inbox.release(taken + inbox.take(100, 10**6))
    assert inbox.held == 0 and events == ["pause", "pause", "resume"]


@pytest.mark.parametrize(("budget", "window"), [
    (64 * 1024 * 1024, 16384),  # the default budget: 4 KiB a message
    (8 * 4096, 8),
    (8 * 4096 + 4095, 8),
    (4095, 1),  # never 0: the protocol forbids it
    (1, 1),
    (2**40, 65535),  # the protocol's maximum
])
def test_receive_maximum_is_the_byte_budget_at_four_kib_a_message(budget: int, window: int) -> None:
    assert receive_maximum(budget) == window
