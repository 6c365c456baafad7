"""Builders for the evaluation-core tests, and an in-memory stand-in for the engine's replay."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.rules import (
    EvalConfig,
    LaneSpec,
    LoggerState,
    ProductProfile,
    Sample,
    SeriesContext,
    Waypoint,
    advance,
    initial_state,
    needs_replay,
    resume_point,
)
from alerts.rules.advance import ExcursionRecord, open_excursions
from alerts.rules.timeutil import to_us

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
AMS = Waypoint("AMS", 52.31, 4.76, 5.0, 6.0)
BOS = Waypoint("BOS customs", 42.36, -71.01, 5.0, 8.0)
LANE = LaneSpec(30.0, 48.0, 100.0, (AMS, BOS))
FRIDGE = ProductProfile(temp_min_c=2.0, temp_max_c=8.0, stability_budget_s=3600.0)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ctx(product: ProductProfile = FRIDGE, *, lane: LaneSpec = LANE, max_gap_s: float = 900.0,
        **config: Any) -> SeriesContext:
    return SeriesContext(product, lane, max_gap_s, EvalConfig(**config))


def series(points: Iterable[tuple[float, float]], logger_id: str = "L1", **extra: Any) -> list[Sample]:
    """Readings from (minute, °C) pairs."""
    return [Sample(logger_id, at(m), t, **extra) for m, t in points]


def fold(readings: Sequence[Sample], context: SeriesContext, logger_id: str = "L1") -> LoggerState:
    return advance(initial_state(logger_id, context), readings, context).state


class MemoryEngine:
    """What alerts/engine.py does with the database, over dicts: store, replay, checkpoints.

    Readings are stored first-write-wins on (logger_id, ts); each batch marks the shipment
    dirty from its earliest new reading, and every logger of the shipment is brought up to date
    (appending, or replaying from the last checkpoint before the dirty time).
    """

    def __init__(self, contexts: dict[str, SeriesContext]) -> None:
        self.contexts = contexts
        self.readings: dict[str, dict[int, Sample]] = {lid: {} for lid in contexts}
        self.states = {lid: initial_state(lid, c) for lid, c in contexts.items()}
        self.checkpoints: dict[str, list[LoggerState]] = {lid: [] for lid in contexts}
        self.excursions: dict[str, list[ExcursionRecord]] = {lid: [] for lid in contexts}
        self.replays = 0

    def ingest(self, batch: Iterable[Sample]) -> None:
        dirty: int | None = None
        for r in batch:
            t = to_us(r.ts)
            stored = self.readings[r.logger_id]
            if t in stored:
                continue
            stored[t] = r
            dirty = t if dirty is None else min(dirty, t)
        if dirty is None:
            return
        for lid in self.contexts:
            self._evaluate(lid, dirty)

    def _evaluate(self, lid: str, dirty: int) -> None:
        state = self.states[lid]
        if needs_replay(state, dirty):
            self.replays += 1
            state = resume_point(self.checkpoints[lid], dirty) or initial_state(
                lid, self.contexts[lid]
            )
            self.checkpoints[lid] = [
                c for c in self.checkpoints[lid] if c.last_us is not None and c.last_us < dirty
            ]
        start = state.last_us
        self.excursions[lid] = [
            e for e in self.excursions[lid]
            if start is not None and e.end_us is not None and e.end_us <= start
        ]
        new = [r for t, r in sorted(self.readings[lid].items()) if start is None or t > start]
        result = advance(state, new, self.contexts[lid])
        self.checkpoints[lid].extend(result.checkpoints)
        self.excursions[lid].extend(result.closed)
        self.excursions[lid].extend(open_excursions(result.state))
        self.states[lid] = result.state

    def all_excursions(self) -> list[ExcursionRecord]:
        return sorted(
            (e for v in self.excursions.values() for e in v),
            key=lambda e: (e.logger_id, e.kind, e.start_us),
        )
