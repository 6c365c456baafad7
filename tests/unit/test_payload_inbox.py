"""The inbox between the MQTT reader and the batcher: order, budgets, pause and resume."""

from __future__ import annotations

from ingest.batch import Delivery
from ingest.inbox import Inbox


def deliveries(n: int, size: int = 10) -> list[Delivery]:
    return [Delivery(b"t", bytes(size), i + 1, 0, 0.0) for i in range(n)]


def test_takes_in_arrival_order_within_message_and_byte_budgets() -> None:
    inbox = Inbox(100, lambda: None, lambda: None)
    for d in deliveries(10, size=100):
        inbox.push(d)
    assert [d.mid for d in inbox.take(4, 10_000)] == [1, 2, 3, 4]
    assert [d.mid for d in inbox.take(100, 250)] == [5, 6, 7]  # stops once 250 bytes are reached
    assert [d.mid for d in inbox.take(100, 1)] == [8]  # never less than one
    assert [d.mid for d in inbox.take(100, 10_000)] == [9, 10]
    assert len(inbox) == 0 and inbox.bytes == 0


def test_pauses_when_full_and_resumes_at_half() -> None:
    events: list[str] = []
    inbox = Inbox(10, lambda: events.append("pause"), lambda: events.append("resume"))
    for d in deliveries(12):
        inbox.push(d)
    assert events == ["pause"] and inbox.full
    inbox.take(6, 10**6)
    assert events == ["pause"]  # 6 left: above half
    inbox.take(1, 10**6)
    assert events == ["pause", "resume"] and not inbox.full


def test_clear_forgets_everything_without_resuming() -> None:
    events: list[str] = []
    inbox = Inbox(2, lambda: events.append("pause"), lambda: events.append("resume"))
    for d in deliveries(3):
        inbox.push(d)
    inbox.clear()
    assert (len(inbox), inbox.bytes, inbox.full, events) == (0, 0, False, ["pause"])
