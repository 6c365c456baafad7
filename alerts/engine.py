"""Evaluate shipments in one transaction: lock, bring series up to date, judge, persist, alert.

Lock order (deadlock-free against ingest, the API and other workers): shipment_state rows
(sorted, SKIP LOCKED) → alert rows → audit chain lock → evaluation_pending rows at the end.
Helpers flush, never commit: the caller's unit of work commits.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, Table, bindparam, literal, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession

from alerts import metrics
from alerts.forecast import store as forecasts
from alerts.forecast.adapter import current_lane, where
from alerts.mail import outbox as mail_outbox
from alerts.rules import (
    EvalConfig,
    Evaluation,
    LoggerState,
    Memo,
    Plan,
    at_risk,
    evaluate,
    reconcile,
    state_from_json,
    state_to_json,
)
from alerts.series_io import SeriesJob, SeriesStats, SeriesWrites, jobs_for, refresh
from alerts.store import Bundle, alert_view, load_bundles
from alerts.transitions import AuditEntry, apply_plan, write_audit
from alerts.webhooks import outbox
from app.core.models import (
    Alert,
    AlertEvent,
    EvaluationPending,
    Shipment,
    ShipmentState,
)

log = logging.getLogger(__name__)
ENGINE_STATE_VERSION = 1
FINAL_STATUSES = ("received",)


@dataclass
class BatchResult:
    evaluated: list[uuid.UUID] = field(default_factory=list)
    skipped: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)
    events: int = 0
    stats: SeriesStats = field(default_factory=SeriesStats)


def config_from(settings: Any) -> EvalConfig:
    return EvalConfig(escalation_after_s=float(settings.escalation_after_s))


async def ensure_state_rows(session: AsyncSession, shipment_ids: Sequence[uuid.UUID]) -> None:
    """A shipment_state row for every existing shipment among `shipment_ids`.

    Rows that exist are left out of the INSERT: ON CONFLICT would wait for a transaction that
    has updated such a row (another worker evaluating it) instead of letting us skip it.
    """
    if not shipment_ids:
        return
    exists = select(ShipmentState.shipment_id).where(ShipmentState.shipment_id == Shipment.id)
    source = select(
        Shipment.id, literal(0), literal(0.0), literal(0.0), literal(0.0), literal(False),
        literal(0), literal(0),
    ).where(Shipment.id.in_(shipment_ids), ~exists.exists())
    stmt = insert(ShipmentState).from_select(
        ["shipment_id", "reading_count", "time_out_of_range_s", "time_unknown_s",
         "stability_budget_used_s", "at_risk", "open_alerts", "open_critical_alerts"], source,
    ).on_conflict_do_nothing(index_elements=["shipment_id"])
    await session.execute(stmt)


async def evaluate_shipments(
    session: AsyncSession, shipment_ids: Sequence[uuid.UUID], *, now: datetime,
    config: EvalConfig,
) -> BatchResult:
    """Evaluate the shipments this transaction can lock (others are skipped, not waited for).

    A constant number of statements per batch: reads in bulk, judging in memory, writes in
    bulk. A shipment whose judging raises is left out (and reported failed); a database error
    fails the whole batch, and the worker retries its shipments one by one.
    """
    result = BatchResult()
    ids = sorted(set(shipment_ids))
    if not ids:
        return result
    # Many short statements: JIT compilation (triggered by cost estimates on big or freshly
    # filled partitioned tables) costs hundreds of ms per statement and saves nothing here.
    await session.execute(text("SET LOCAL jit = off"))
    await ensure_state_rows(session, ids)
    table = ShipmentState.__table__
    rows = list((await session.execute(  # plain rows: read, never written through the ORM
        select(table).where(table.c.shipment_id.in_(ids))
        .order_by(table.c.shipment_id).with_for_update(skip_locked=True)
    )).all())
    locked = [r.shipment_id for r in rows]
    result.skipped = sorted(set(ids) - set(locked))
    if not locked:
        return result
    pending = {p.shipment_id: (p.dirty_from, p.version) for p in (await session.execute(
        select(EvaluationPending.shipment_id, EvaluationPending.dirty_from,
               EvaluationPending.version).where(EvaluationPending.shipment_id.in_(locked))
    )).all()}
    bundles = await load_bundles(session, locked, config)
    alerts: dict[uuid.UUID, dict[str, Alert]] = {i: {} for i in locked}
    for a in (await session.scalars(
        select(Alert).where(Alert.shipment_id.in_(locked)).order_by(Alert.id).with_for_update()
    )).all():
        alerts[a.shipment_id][str(a.id)] = a
    memos: dict[uuid.UUID, Memo] = {}
    saved_count: dict[uuid.UUID, int] = {}
    jobs: list[SeriesJob] = []
    for row in rows:
        bundle = bundles.get(row.shipment_id)
        if bundle is None:
            continue
        saved, memos[row.shipment_id] = decode_engine_state(row.engine_state)
        saved_count[row.shipment_id] = len(saved)
        contexts = [(lid, bundle.spec.context(lid)) for lid, _ in bundle.spec.max_gap_s]
        jobs.extend(jobs_for(row.shipment_id, contexts, saved,
                             pending.get(row.shipment_id, (None, 0))[0]))
    writes = SeriesWrites()
    states = await refresh(session, jobs, result.stats, writes)
    # Shipments whose saved logger states must be re-encoded (new data, replays, new loggers).
    reread = {j.shipment_id for j in jobs if states[(j.shipment_id, j.logger_id)] is not j.saved}
    reread |= {sid for sid, n in saved_count.items() if n != sum(
        1 for _ in bundles[sid].spec.max_gap_s)}
    await writes.flush(session)
    events: list[AlertEvent] = []
    audits: list[AuditEntry] = []
    updates: list[dict[str, Any]] = []
    forecast_jobs: list[forecasts.Job] = []
    for row in rows:
        sid = row.shipment_id
        bundle = bundles.get(sid)
        if bundle is None:
            continue
        mine = {lid: states[(sid, lid)] for lid, _ in bundle.spec.max_gap_s}
        try:
            evaluation, plan = judge(bundle, mine, memos[sid], alerts[sid], now, config)
        except Exception:  # a defect in judging one shipment must not stop the others
            log.exception("evaluation of shipment %s failed; it stays pending", sid)
            metrics.SHIPMENTS.labels("failed").inc()
            result.failed.append(sid)
            continue
        ev, au = await apply_plan(session, sid, plan, alerts[sid], now, bundle.spec.product)
        events.extend(ev)
        audits.extend(au)
        values = state_values(row, bundle, mine, evaluation, plan, alerts[sid],
                              series_changed=sid in reread)
        if values:
            values.update(shipment_id=sid, updated_at=now)
            updates.append(values)
        result.evaluated.append(sid)
        try:
            forecast_jobs.append(forecast_job(bundle, evaluation))
        except (ArithmeticError, ValueError, IndexError):  # alerting never waits on a forecast
            log.exception("forecast of shipment %s failed; the previous one stays", sid)
    await _write_states(session, updates)
    # Events, stops and the routine re-check all pass here: the forecasts follow the judgement.
    await forecasts.refresh(session, forecast_jobs, now)
    if events:
        # The side effects' outboxes, in this transaction: sent only once it commits.
        await outbox.enqueue_many(session, events)
        await mail_outbox.enqueue_many(session, events)
    await write_audit(session, audits)
    await _finish_pending(session, [(sid, pending[sid][1]) for sid in result.evaluated
                                    if sid in pending])
    result.events = len(events)
    metrics.SHIPMENTS.labels("evaluated").inc(len(result.evaluated))
    metrics.READINGS.inc(result.stats.readings)
    for e in events:
        metrics.TRANSITIONS.labels(e.type).inc()
    return result


async def _write_states(session: AsyncSession, updates: list[dict[str, Any]]) -> None:
    """One executemany per set of changed columns (Core: no ORM identity-map bookkeeping)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for values in updates:
        cols = tuple(sorted(k for k in values if k != "shipment_id"))
        groups.setdefault(cols, []).append({("p_" + k): v for k, v in values.items()})
    table = cast(Table, ShipmentState.__table__)
    for cols, rows in groups.items():
        stmt = (update(table).where(table.c.shipment_id == bindparam("p_shipment_id"))
                .values({c: bindparam("p_" + c) for c in cols}))
        await session.execute(stmt, rows)


def judge(
    bundle: Bundle, states: dict[str, LoggerState], memo: Memo, alerts: dict[str, Alert],
    now: datetime, config: EvalConfig,
) -> tuple[Evaluation, Plan]:
    """The pure part: the shipment's figures and conditions, and what to do with its alerts."""
    phase = (bundle.shipment.id.int % 1009) / 1009  # stable per shipment
    evaluation = evaluate(bundle.spec, states, bundle.received, memo, now, phase=phase)
    plan = reconcile(
        evaluation.conditions, [alert_view(a) for a in alerts.values()], now,
        clear_s=bundle.spec.clear_s, escalation_after_s=config.escalation_after_s,
    )
    return evaluation, plan


def forecast_job(bundle: Bundle, evaluation: Evaluation) -> forecasts.Job:
    spec, s = bundle.spec, evaluation.summary
    departed = spec.departed_at or min(
        (e.at for e in spec.events if e.type == "departed"), default=None)
    return forecasts.Job(
        bundle.shipment.id, bundle.shipment.lane_id, current_lane(spec),
        where(spec, evaluation.stops, departed_at=departed, delivered_at=s.delivered_at,
              hold_deadline=s.hold_deadline))


def state_values(
    row: Any, bundle: Bundle, states: dict[str, LoggerState], evaluation: Evaluation,
    plan: Plan, alerts: dict[str, Alert], *, series_changed: bool = True,
) -> dict[str, Any]:
    """The shipment_state columns that changed (loggers' states re-encoded only if they did)."""
    live = [a for a in alerts.values() if a.state != "resolved"]
    s = evaluation.summary
    final = bundle.shipment.status in FINAL_STATUSES
    next_check = plan.next_escalation_at if final else min(
        t for t in (evaluation.next_check_at, plan.next_escalation_at) if t is not None
    )
    values: dict[str, Any] = {
        "evaluated_until": s.last_reading_at, "last_reading_ts": s.last_reading_at,
        "last_temp_c": s.last_temp_c, "last_lat": s.last_lat, "last_lon": s.last_lon,
        "reading_count": s.reading_count, "min_c": s.min_c, "max_c": s.max_c,
        "mean_c": s.mean_c, "mkt_c": s.mkt_c, "time_out_of_range_s": s.time_out_of_range_s,
        "time_unknown_s": s.time_unknown_s,
        "stability_budget_used_s": s.stability_budget_used_s,
        "hold_deadline": s.hold_deadline, "expected_arrival": s.expected_arrival,
        "margin_h": s.margin_h, "projected_breach_at": s.projected_breach_at,
        "at_risk": not final and at_risk(s, bundle.spec.safety_margin_h,
                                         [a.severity for a in live]),
        "open_alerts": len(live),
        "open_critical_alerts": sum(1 for a in live if a.severity == "critical"),
        "engine_state": encode_engine_state(states, evaluation.memo) if series_changed
        else {**(row.engine_state or {}), "memo": evaluation.memo.to_json()},
        "next_check_at": next_check,
    }
    return {k: v for k, v in values.items() if getattr(row, k) != v}


def decode_engine_state(data: dict[str, Any] | None) -> tuple[dict[str, LoggerState], Memo]:
    if not data or data.get("v") != ENGINE_STATE_VERSION:
        return {}, Memo()
    states = {}
    for lid, s in data.get("loggers", {}).items():
        try:
            states[lid] = state_from_json(s)
        except (KeyError, ValueError, TypeError):
            log.warning("unreadable saved state of logger %s: it will be replayed", lid)
    try:
        memo = Memo.from_json(data.get("memo"))
    except (AttributeError, KeyError, TypeError, ValueError):
        log.warning("unreadable saved memo: time-driven conditions start afresh")
        memo = Memo()
    return states, memo


def encode_engine_state(states: dict[str, LoggerState], memo: Memo) -> dict[str, Any]:
    return {"v": ENGINE_STATE_VERSION,
            "loggers": {lid: state_to_json(s) for lid, s in sorted(states.items())},
            "memo": memo.to_json()}


_FINISH = text("""
DELETE FROM evaluation_pending WHERE shipment_id IN (
    SELECT p.shipment_id FROM evaluation_pending p
    JOIN unnest(:sids, :versions) AS v(sid, version)
      ON p.shipment_id = v.sid AND p.version = v.version
    ORDER BY p.shipment_id FOR UPDATE OF p)
""").bindparams(bindparam("sids", type_=ARRAY(UUID(as_uuid=True))),
                bindparam("versions", type_=ARRAY(BigInteger)))


async def _finish_pending(session: AsyncSession, done: list[tuple[uuid.UUID, int]]) -> None:
    """Drop the pending rows this evaluation covered (unless new work arrived meanwhile).

    Rows are locked in shipment order, the order in which claiming inserts them.
    """
    if done:
        sids, versions = (list(x) for x in zip(*sorted(done), strict=True))
        await session.execute(_FINISH, {"sids": sids, "versions": versions})


_CLAIM = text("""
WITH moved AS (
    DELETE FROM evaluation_queue WHERE shipment_id IN (
        SELECT shipment_id FROM evaluation_queue ORDER BY enqueued_at LIMIT :limit
        FOR UPDATE SKIP LOCKED)
    RETURNING shipment_id, dirty_from)
INSERT INTO evaluation_pending AS p (shipment_id, dirty_from, version, claimed_at)
SELECT shipment_id, dirty_from, 1, :now FROM moved ORDER BY shipment_id
ON CONFLICT (shipment_id) DO UPDATE
    SET dirty_from = LEAST(p.dirty_from, EXCLUDED.dirty_from), version = p.version + 1
RETURNING p.shipment_id
""")


async def claim_queue(session: AsyncSession, limit: int, now: datetime) -> int:
    """Move up to `limit` rows of ingest's evaluation_queue into evaluation_pending.

    Run in its own short transaction: ingest's queue upsert then never waits on an evaluation.
    """
    return len((await session.execute(_CLAIM, {"limit": limit, "now": now})).all())
