"""Rule 1 for late data: where to resume a logger's evaluation when a batch lands in the past."""

from __future__ import annotations

from collections.abc import Sequence

from alerts.rules.state import LoggerState


def needs_replay(state: LoggerState | None, dirty_from_us: int) -> bool:
    """True when data at or before the state's latest device time may have changed."""
    return state is not None and state.last_us is not None and dirty_from_us <= state.last_us


def resume_point(checkpoints: Sequence[LoggerState], dirty_from_us: int) -> LoggerState | None:
    """The latest checkpoint strictly before `dirty_from_us` (None: start from scratch).

    Everything a checkpoint summarises lies at or before its `last_us`, so it stays valid
    exactly when the earliest changed reading is later than that.
    """
    best: LoggerState | None = None
    for cp in checkpoints:
        if cp.last_us is not None and cp.last_us < dirty_from_us and (
            best is None or (best.last_us is not None and cp.last_us > best.last_us)
        ):
            best = cp
    return best
