"""Webhook retry policy (pure): backoff with jitter, giving up after 24 h, disabling a dead endpoint."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

# After the 1st, 2nd, … failed attempt of one delivery; then STEADY_DELAY until GIVE_UP_AFTER.
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
)
STEADY_DELAY = timedelta(hours=3)
# A delivery is retried for at least this long (from enqueue or a manual retry), then marked failed.
GIVE_UP_AFTER = timedelta(hours=24)
# ±20 %: receivers recovering from an outage are not hit by every queued event at the same second.
JITTER = 0.2
# An endpoint whose every attempt failed for this long (and at least this often) is disabled.
DISABLE_AFTER = timedelta(days=3)
DISABLE_MIN_FAILURES = 10


def is_success(status_code: int | None) -> bool:
    """Any 2xx is success; a 3xx is not followed and counts as failure."""
    return status_code is not None and 200 <= status_code < 300


def retry_delay(failures: int, jitter: float) -> timedelta:
    """Delay after the `failures`-th consecutive failure; `jitter` ∈ [0, 1) spreads it by ±JITTER."""
    if failures < 1:
        raise ValueError("failures counts from 1")
    if not 0.0 <= jitter < 1.0:
        raise ValueError("jitter must be in [0, 1)")
    base = RETRY_DELAYS[failures - 1] if failures <= len(RETRY_DELAYS) else STEADY_DELAY
    return base * (1.0 - JITTER + 2.0 * JITTER * jitter)


def next_attempt_at(
    *, failures: int, scheduled_at: datetime, failed_at: datetime, jitter: float
) -> datetime | None:
    """When to try again after a failure, or None to give up (the window is at least GIVE_UP_AFTER)."""
    if scheduled_at.tzinfo is None or failed_at.tzinfo is None:
        raise ValueError("naive datetime")
    if failed_at - scheduled_at >= GIVE_UP_AFTER:
        return None
    return failed_at + retry_delay(failures, jitter)


def settle(
    *, ok: bool, permanent: bool, failures: int, scheduled_at: datetime, finished_at: datetime,
    jitter: Callable[[], float],
) -> tuple[str, datetime | None]:
    """A delivery's state after an attempt, and when to try again: `delivered`; `pending` with the
    next attempt; `failed` for a permanent rejection at once, else once the window is over.
    Shared by webhook and mail deliveries."""
    if ok:
        return "delivered", None
    next_at = None if permanent else next_attempt_at(
        failures=failures, scheduled_at=scheduled_at, failed_at=finished_at, jitter=jitter(),
    )
    return ("pending" if next_at else "failed"), next_at


def should_disable(
    *, failing_since: datetime | None, consecutive_failures: int, now: datetime
) -> bool:
    """An endpoint failing without a single success for DISABLE_AFTER is switched off."""
    return (
        failing_since is not None
        and now - failing_since >= DISABLE_AFTER
        and consecutive_failures >= DISABLE_MIN_FAILURES
    )


def lease_for(*, timeout_s: float, rounds: int) -> timedelta:
    """How long a claimed row stays reserved: its queue wait, the attempt, and recording, with margin.

    A claimed row waits at most `rounds` endpoint slots and `rounds` global slots, each held for at
    most one capped attempt; past the lease another worker may send it again (at-least-once).
    """
    return timedelta(seconds=(2 * rounds + 1) * timeout_s + 60)
