"""Bring loggers' saved states up to date with their readings, for a batch of shipments at once.

Appending (the common case) reads every logger's new readings in one query. Data that lands at
or before a state's latest device time (store-and-forward) replays that logger from its latest
checkpoint before the earliest changed time, streaming its readings. Excursion and checkpoint
rows are written in bulk by `SeriesWrites.flush`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, text
from sqlalchemy.dialects.postgresql import ARRAY, TEXT, TIMESTAMP, UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession

from alerts import metrics
from alerts.rules import (
    TEMPERATURE_CRITICAL,
    TEMPERATURE_HIGH,
    TEMPERATURE_LOW,
    ExcursionRecord,
    LoggerState,
    SeriesContext,
    advance,
    from_us,
    initial_state,
    needs_replay,
    open_excursions,
    state_from_json,
    state_to_json,
    to_us,
)
from alerts.specs import SAMPLE_COLUMNS, SAMPLE_FIELDS, samples
from app.core.models import EvaluationCheckpoint, Excursion
from app.core.models import Reading as ReadingRow

log = logging.getLogger(__name__)
CHUNK = 5000
_TEMPERATURE_KINDS = (TEMPERATURE_HIGH, TEMPERATURE_LOW, TEMPERATURE_CRITICAL)
PAGE = 20_000  # readings per logger per bulk read: bounds memory for long histories
# The Sample's columns, then the shipment: read by index (a Row's attribute costs 0.6 µs).
_LOGGER, _SID = SAMPLE_FIELDS.index("logger_id"), len(SAMPLE_FIELDS)
_NEW_READINGS = text(
    f"SELECT {', '.join('r.' + name for name in SAMPLE_FIELDS)}, v.sid "
    "FROM unnest(:sids, :lids, :afters) AS v(sid, lid, after) "
    "CROSS JOIN LATERAL (SELECT * FROM readings x WHERE x.shipment_id = v.sid "
    "AND x.logger_id = v.lid AND x.ts > v.after ORDER BY x.ts LIMIT :page) r "
    "ORDER BY v.sid, r.logger_id, r.ts"
).bindparams(
    bindparam("sids", type_=ARRAY(UUID(as_uuid=True))), bindparam("lids", type_=ARRAY(TEXT)),
    bindparam("afters", type_=ARRAY(TIMESTAMP(timezone=True))),
)
_CLEAR_CHECKPOINTS = text(
    "DELETE FROM evaluation_checkpoints c USING unnest(:sids, :lids) AS v(sid, lid) "
    "WHERE c.shipment_id = v.sid AND c.logger_id = v.lid"
).bindparams(
    bindparam("sids", type_=ARRAY(UUID(as_uuid=True))), bindparam("lids", type_=ARRAY(TEXT)),
)
_DROP_EXCURSIONS = text(
    "DELETE FROM excursions e USING unnest(:sids, :lids, :cuts) AS v(sid, lid, cut) "
    "WHERE e.shipment_id = v.sid AND e.logger_id = v.lid "
    "AND (v.cut IS NULL OR e.\"end\" IS NULL OR e.\"end\" > v.cut)"
).bindparams(
    bindparam("sids", type_=ARRAY(UUID(as_uuid=True))), bindparam("lids", type_=ARRAY(TEXT)),
    bindparam("cuts", type_=ARRAY(TIMESTAMP(timezone=True))),
)
_FOLDED_CHECK = text(
    "SELECT v.sid, v.lid, coalesce((cp.state->>'count')::bigint, 0) AS cp_count, "
    "(SELECT count(*) FROM readings r WHERE r.shipment_id = v.sid AND r.logger_id = v.lid "
    " AND r.ts > coalesce(cp.upto_ts, '-infinity') AND r.ts <= v.last "
    " AND r.temp_c NOT IN ('NaN', 'Infinity', '-Infinity')) AS stored "
    "FROM unnest(:sids, :lids, :dirties, :lasts) AS v(sid, lid, dirty, last) "
    "LEFT JOIN LATERAL (SELECT upto_ts, state FROM evaluation_checkpoints c "
    " WHERE c.shipment_id = v.sid AND c.logger_id = v.lid AND c.upto_ts < v.dirty "
    " ORDER BY c.upto_ts DESC LIMIT 1) cp ON true"
).bindparams(
    bindparam("sids", type_=ARRAY(UUID(as_uuid=True))), bindparam("lids", type_=ARRAY(TEXT)),
    bindparam("dirties", type_=ARRAY(TIMESTAMP(timezone=True))),
    bindparam("lasts", type_=ARRAY(TIMESTAMP(timezone=True))),
)
_FAR_PAST = datetime.fromisoformat("0001-01-01T00:00:00+00:00")


@dataclass
class SeriesStats:
    readings: int = 0
    replays: int = 0


@dataclass
class SeriesWrites:
    """Row changes collected while folding, written in a few statements."""

    drop: list[tuple[uuid.UUID, str, datetime | None]] = field(default_factory=list)
    fresh: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    excursions: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)

    async def flush(self, session: AsyncSession) -> None:
        if self.drop:
            sids, lids, cuts = (list(x) for x in zip(*self.drop, strict=True))
            await session.execute(_DROP_EXCURSIONS, {"sids": sids, "lids": lids, "cuts": cuts})
        if self.fresh:
            sids, lids = (list(x) for x in zip(*self.fresh, strict=True))
            await session.execute(_CLEAR_CHECKPOINTS, {"sids": sids, "lids": lids})
        if self.excursions:
            await session.execute(insert(Excursion), self.excursions)
        if self.checkpoints:
            stmt = insert(EvaluationCheckpoint)
            await session.execute(stmt.on_conflict_do_update(
                index_elements=["shipment_id", "logger_id", "upto_ts"],
                set_={"state": stmt.excluded.state},
            ), self.checkpoints)
        self.drop, self.fresh, self.excursions, self.checkpoints = [], [], [], []


@dataclass(frozen=True, slots=True)
class SeriesJob:
    """One logger of one shipment to bring up to date."""

    shipment_id: uuid.UUID
    logger_id: str
    ctx: SeriesContext
    saved: LoggerState | None
    dirty_from: datetime | None


async def refresh(
    session: AsyncSession, jobs: Sequence[SeriesJob], stats: SeriesStats, writes: SeriesWrites,
) -> dict[tuple[uuid.UUID, str], LoggerState]:
    """Every job's logger state after all its stored readings."""
    out: dict[tuple[uuid.UUID, str], LoggerState] = {}
    appends: list[tuple[SeriesJob, LoggerState]] = []
    suspects: list[tuple[SeriesJob, LoggerState]] = []
    for job in jobs:
        key = (job.shipment_id, job.logger_id)
        state = job.saved
        if state is not None and state.fingerprint != job.ctx.fingerprint():
            state = None  # the profile or lane changed: judge the whole record again
        if state is None:  # judged from its first reading: read in bulk like new data
            stats.replays += 1
            writes.fresh.append(key)
            appends.append((job, initial_state(job.logger_id, job.ctx)))
        elif job.dirty_from is None:
            out[key] = state
        elif not needs_replay(state, to_us(job.dirty_from)):
            appends.append((job, state))
        else:
            suspects.append((job, state))
    late = await _unfolded(session, suspects)
    for job, state in suspects:
        if (job.shipment_id, job.logger_id) not in late:
            appends.append((job, state))  # already folded (read after an earlier claim)
            continue
        stats.replays += 1  # late data: resume from the checkpoint before it, streaming on
        start = await _restart(session, job, job.dirty_from)
        out[(job.shipment_id, job.logger_id)] = await _replay(session, job, start, stats, writes)
    if appends:
        out.update(await _append(session, appends, stats, writes))
    return out


async def _unfolded(
    session: AsyncSession, suspects: list[tuple[SeriesJob, LoggerState]]
) -> set[tuple[uuid.UUID, str]]:
    """Loggers with stored readings at or before their state's latest time not yet folded in.

    A dirty mark at or before the state's latest time is not always late data: the engine may
    already have read readings committed after it claimed the mark. Readings after the latest
    checkpoint before the mark are counted in the table and compared with what the state has
    folded since that checkpoint.
    """
    if not suspects:
        return set()
    params = {
        "sids": [j.shipment_id for j, _ in suspects], "lids": [j.logger_id for j, _ in suspects],
        "dirties": [j.dirty_from for j, _ in suspects],
        "lasts": [_cut(s) for _, s in suspects],
    }
    rows = (await session.execute(_FOLDED_CHECK, params)).all()
    folded = {(j.shipment_id, j.logger_id): s.count for j, s in suspects}
    return {(r.sid, r.lid) for r in rows if r.stored != folded[(r.sid, r.lid)] - r.cp_count}


async def _append(
    session: AsyncSession, items: list[tuple[SeriesJob, LoggerState]], stats: SeriesStats,
    writes: SeriesWrites,
) -> dict[tuple[uuid.UUID, str], LoggerState]:
    """Fold every logger's readings after its state, a page per logger per round trip."""
    out: dict[tuple[uuid.UUID, str], LoggerState] = {}
    todo = items
    while todo:
        params = {
            "sids": [j.shipment_id for j, _ in todo], "lids": [j.logger_id for j, _ in todo],
            "afters": [_cut(s) or _FAR_PAST for _, s in todo], "page": PAGE,
        }
        rows: dict[tuple[uuid.UUID, str], list[Any]] = {}
        for r in (await session.execute(_NEW_READINGS, params)).all():
            rows.setdefault((r[_SID], r[_LOGGER]), []).append(r)
        more = []
        for job, state in todo:
            key = (job.shipment_id, job.logger_id)
            new = rows.get(key)
            if not new:
                out.setdefault(key, state)
                continue
            if key not in out:  # first page: the open excursions (and later ones) are rewritten
                writes.drop.append((job.shipment_id, job.logger_id, _cut(state)))
            out[key] = _fold(job, state, new, stats, writes)
            if len(new) == PAGE:
                more.append((job, out[key]))
            else:
                writes.excursions.extend(_excursion_row(job.shipment_id, e)
                                         for e in open_excursions(out[key]))
        todo = more
    return out


async def _restart(
    session: AsyncSession, job: SeriesJob, dirty_from: datetime | None
) -> LoggerState:
    """The latest valid checkpoint before `dirty_from` (or a fresh state); later ones go."""
    where = [EvaluationCheckpoint.shipment_id == job.shipment_id,
             EvaluationCheckpoint.logger_id == job.logger_id]
    best = None
    if dirty_from is not None:
        row = await session.scalar(
            select(EvaluationCheckpoint.state).where(*where, EvaluationCheckpoint.upto_ts < dirty_from)
            .order_by(EvaluationCheckpoint.upto_ts.desc()).limit(1)
        )
        if row is not None and row.get("fp") == job.ctx.fingerprint():
            best = state_from_json(row)
    stale = delete(EvaluationCheckpoint).where(*where)
    if best is not None and best.last_us is not None:
        stale = stale.where(EvaluationCheckpoint.upto_ts > from_us(best.last_us))
    await session.execute(stale)
    return best if best is not None else initial_state(job.logger_id, job.ctx)


async def _replay(
    session: AsyncSession, job: SeriesJob, start: LoggerState, stats: SeriesStats,
    writes: SeriesWrites,
) -> LoggerState:
    """Stream the logger's readings after `start` (a replay may cover the whole record)."""
    stmt = select(*SAMPLE_COLUMNS).where(
        ReadingRow.shipment_id == job.shipment_id, ReadingRow.logger_id == job.logger_id
    )
    if start.last_us is not None:
        stmt = stmt.where(ReadingRow.ts > from_us(start.last_us))
    stmt = stmt.order_by(ReadingRow.ts).execution_options(yield_per=CHUNK)
    state = start
    writes.drop.append((job.shipment_id, job.logger_id, _cut(start)))
    result = await session.stream(stmt)
    async for part in result.partitions():
        state = _fold(job, state, part, stats, writes)
    writes.excursions.extend(_excursion_row(job.shipment_id, e) for e in open_excursions(state))
    return state


def _fold(
    job: SeriesJob, state: LoggerState, rows: Sequence[Any], stats: SeriesStats,
    writes: SeriesWrites,
) -> LoggerState:
    """Fold rows into the state; closed excursions and checkpoints go to `writes`."""
    readings, skipped = samples(rows)
    if skipped:
        log.warning("skipped %d non-finite readings of %s", skipped, job.logger_id)
        metrics.ERRORS.labels("non_finite_reading").inc(skipped)
    step = advance(state, readings, job.ctx)
    stats.readings += len(rows)
    writes.excursions.extend(_excursion_row(job.shipment_id, e) for e in step.closed)
    writes.checkpoints.extend(_checkpoint_row(job, cp) for cp in step.checkpoints)
    return step.state


def _cut(state: LoggerState) -> datetime | None:
    return from_us(state.last_us) if state.last_us is not None else None


def _checkpoint_row(job: SeriesJob, cp: LoggerState) -> dict[str, Any]:
    return {"shipment_id": job.shipment_id, "logger_id": job.logger_id,
            "upto_ts": from_us(cp.last_us or 0), "state": state_to_json(cp)}


def _excursion_row(shipment_id: uuid.UUID, e: ExcursionRecord) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(), "shipment_id": shipment_id, "logger_id": e.logger_id, "kind": e.kind,
        "start": from_us(e.start_us), "end": from_us(e.end_us) if e.end_us is not None else None,
        "duration_s": e.known_s, "unknown_s": e.unknown_s,
        "peak_c": e.peak if e.kind in _TEMPERATURE_KINDS else None, "alarmed": e.alarmed,
        "retroactive": e.retroactive,
    }


def jobs_for(shipment_id: uuid.UUID, contexts: Iterable[tuple[str, SeriesContext]],
             saved: dict[str, LoggerState], dirty_from: datetime | None) -> list[SeriesJob]:
    return [SeriesJob(shipment_id, lid, ctx, saved.get(lid), dirty_from) for lid, ctx in contexts]
