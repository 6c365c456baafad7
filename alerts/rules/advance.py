"""Fold one logger's readings (device-time order) into its state: rules 1–4, 8 and 9 per logger;
hold its latest reading to the wall clock (rule 2) for judging at `now`.

`advance` costs O(batch). Readings must come after the state's latest device time; a reading at
that very time is a duplicate and changes nothing. Anything earlier raises `OutOfOrder`: the caller
replays from a checkpoint taken before it (see `alerts.rules.replay`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from alerts.rules.fold import (
    BUDGET_LEVELS,
    EXCURSION_KINDS,
    ExcursionRecord,
    Fold,
    OutOfOrder,
    alarm_delays_us,
    record,
)
from alerts.rules.model import TEMPERATURE_HIGH, TEMPERATURE_LOW, Sample, SeriesContext
from alerts.rules.state import Crossing, Episode, LoggerState, Run, Visit
from alerts.rules.timeutil import US
from alerts.rules.tracking import MutableRun


@dataclass(frozen=True, slots=True)
class Advance:
    state: LoggerState
    closed: tuple[ExcursionRecord, ...]
    checkpoints: tuple[LoggerState, ...]
    duplicates: int


def initial_state(logger_id: str, ctx: SeriesContext) -> LoggerState:
    return LoggerState(logger_id=logger_id, fingerprint=ctx.fingerprint())


def advance(state: LoggerState, readings: Iterable[Sample], ctx: SeriesContext) -> Advance:
    if state.fingerprint != ctx.fingerprint():
        raise ValueError("state was computed against another profile/lane: replay from scratch")
    acc = Fold(state, ctx)
    for reading in readings:
        acc.fold(reading)
    return Advance(acc.freeze(), tuple(acc.closed), tuple(acc.checkpoints), acc.duplicates)


def open_excursions(state: LoggerState) -> tuple[ExcursionRecord, ...]:
    """The excursions still going on at the state's latest reading."""
    return tuple(
        record(state.logger_id, kind, MutableRun.thaw(run), None)
        for kind, run in state.runs.items()
        if kind in EXCURSION_KINDS
    )


def hold_to(state: LoggerState, ctx: SeriesContext, until_us: int, now_us: int) -> LoggerState:
    """The state with its latest reading held until `until_us` (rule 2, by the wall clock).

    Not a fold: what it adds is provisional (a later reading may tell otherwise), so it is
    judged on, never saved. The caller caps `until_us` at the latest reading + the max gap.
    """
    if state.last_us is None or until_us <= state.last_us:
        return state
    acc = Fold(state, ctx)
    acc.hold_to(until_us, now_us)
    return acc.freeze()


def hold_due(state: LoggerState, ctx: SeriesContext) -> tuple[int, ...]:
    """Device times at which holding the latest reading changes a condition: an alarm delay
    met, a budget level reached, an episode clear (the sweep's marks). The figures it moves in
    between are refreshed by the routine re-check; the end of the hold needs no mark of its
    own (nothing changes there that signal_lost's own mark does not already look at)."""
    if state.last_us is None:
        return ()
    last, horizon = state.last_us, state.last_us + int(ctx.max_gap_s * US)
    delays = alarm_delays_us(ctx)
    marks: list[int] = []
    marks.extend(run.start + delays[kind] for kind, run in state.runs.items()
                 if run.alarm_us is None and kind in delays)
    if TEMPERATURE_HIGH in state.runs or TEMPERATURE_LOW in state.runs:
        budget = int(ctx.product.stability_budget_s * US)
        reached = {c.level for c in state.crossings}
        marks.extend(last + budget * level // 100 - state.out_us
                     for level in BUDGET_LEVELS if level not in reached)
    clear = int(ctx.clear_s * US)
    for kind, eps in state.episodes.items():
        if kind not in state.runs and eps and eps[-1].end is not None and not eps[-1].confirmed:
            marks.append(eps[-1].end + clear)
    return tuple(sorted({m for m in marks if last < m <= horizon}))


__all__ = [
    "Advance", "Crossing", "Episode", "ExcursionRecord", "OutOfOrder", "Run", "Visit", "advance",
    "alarm_delays_us", "hold_due", "hold_to", "initial_state", "open_excursions",
]
