"""The `alerts` role: evaluate shipments as ingest marks them dirty, and sweep for time-driven ones.

Loop: LISTEN coldchain_eval (wake-up) + poll; claim evaluation_queue rows into evaluation_pending
(short transaction); evaluate pending shipments; then evaluate shipments whose `next_check_at`
is due (signal lost, hold time, dwell, escalation). Any number of processes may run this: rows
are claimed with SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts import metrics
from alerts.checkpoints import run_checkpoints
from alerts.engine import (
    BatchResult,
    claim_queue,
    config_from,
    ensure_state_rows,
    evaluate_shipments,
)
from alerts.mail.delivery import run_mail
from alerts.rules import EvalConfig
from alerts.webhooks.delivery import run_delivery
from app.core.db import make_engine, make_sessionmaker
from app.core.handoff import CHANNEL
from app.core.listen import Listener
from app.core.models import EvaluationPending, ShipmentState, utcnow
from app.core.settings import Settings
from app.core.waiting import wait_any

log = logging.getLogger(__name__)
BATCH = 200
SWEEP_BATCH = 1000
RETRY_AFTER = timedelta(seconds=30)
IDLE_POLL_S = 1.0
GATHER_S = 0.05
Clock = Callable[[], datetime]


# -- inner units of work (a session in, flushes only; tests call these) -----------------------
async def claim(session: AsyncSession, *, now: datetime, limit: int = 1000) -> int:
    """Take ingest's queue rows into evaluation_pending (its own short transaction)."""
    return await claim_queue(session, limit, now)


async def pending_ids(session: AsyncSession, *, now: datetime, limit: int = BATCH) -> list[uuid.UUID]:
    """Shipments with new data, least recently evaluated first (failed ones wait their retry).

    A shipment that reports now and then is not queued behind ones that report many times a
    second and were evaluated a moment ago; each is still evaluated once per round.
    """
    return list((await session.scalars(
        select(EvaluationPending.shipment_id)
        .outerjoin(ShipmentState, ShipmentState.shipment_id == EvaluationPending.shipment_id)
        .where(EvaluationPending.claimed_at <= now)
        .order_by(ShipmentState.updated_at.asc().nulls_first(), EvaluationPending.dirty_from)
        .limit(limit)
    )).all())


async def due_ids(session: AsyncSession, *, now: datetime, limit: int = SWEEP_BATCH) -> list[uuid.UUID]:
    """Shipments whose time-driven conditions may have changed by `now`."""
    return list((await session.scalars(
        select(ShipmentState.shipment_id).where(ShipmentState.next_check_at <= now)
        .order_by(ShipmentState.next_check_at).limit(limit)
    )).all())


async def process_pending(
    session: AsyncSession, *, now: datetime, config: EvalConfig, limit: int = BATCH
) -> BatchResult:
    """Evaluate shipments with new data."""
    ids = await pending_ids(session, now=now, limit=limit)
    return await evaluate_shipments(session, ids, now=now, config=config)


async def sweep_due(
    session: AsyncSession, *, now: datetime, config: EvalConfig, limit: int = SWEEP_BATCH
) -> BatchResult:
    """Evaluate shipments whose time-driven conditions may have changed by `now`."""
    ids = await due_ids(session, now=now, limit=limit)
    return await evaluate_shipments(session, ids, now=now, config=config)


async def postpone_failed(session: AsyncSession, failed: list[uuid.UUID], now: datetime) -> None:
    """A shipment whose evaluation fails is retried later, not in a hot loop."""
    if not failed:
        return
    later = now + RETRY_AFTER
    await ensure_state_rows(session, failed)
    await session.execute(update(EvaluationPending).where(
        EvaluationPending.shipment_id.in_(failed)).values(claimed_at=later))
    await session.execute(update(ShipmentState).where(
        ShipmentState.shipment_id.in_(failed)).values(next_check_at=later))


# -- outer edges (open the session, commit) ----------------------------------------------------
async def run_cycle(
    maker: async_sessionmaker[AsyncSession], config: EvalConfig, clock: Clock, *,
    sweep: bool,
) -> int:
    """One round: claim, evaluate pending (until drained), optionally sweep. Shipments done."""
    done = 0
    for _ in range(50):  # bounded: a round ends, the sweep gets its turn
        async with maker() as session, session.begin():
            await claim(session, now=clock())  # new work joins at every batch
        result = await _unit(maker, config, "pending", clock(), pending_ids)
        done += len(result.evaluated)
        if not result.evaluated:
            break
    if sweep:
        for _ in range(50):
            result = await _unit(maker, config, "sweep", clock(), due_ids)
            done += len(result.evaluated)
            if len(result.evaluated) + len(result.failed) + len(result.skipped) < SWEEP_BATCH:
                break
    return done


async def _unit(
    maker: async_sessionmaker[AsyncSession], config: EvalConfig, trigger: str, now: datetime,
    pick: Callable[..., Awaitable[list[uuid.UUID]]],
) -> BatchResult:
    """Evaluate one batch in one transaction; if the batch fails, each shipment alone."""
    started = time.perf_counter()
    async with maker() as session:
        ids = await pick(session, now=now)
    if not ids:
        return BatchResult()
    try:
        async with maker() as session, session.begin():
            result = await evaluate_shipments(session, ids, now=now, config=config)
    except Exception:
        metrics.ERRORS.labels("batch").inc()
        log.exception("evaluation batch of %d shipments failed; retrying one by one", len(ids))
        result = BatchResult()
        for sid in ids:
            try:
                async with maker() as session, session.begin():
                    one = await evaluate_shipments(session, [sid], now=now, config=config)
            except Exception:
                log.exception("evaluation of shipment %s failed; retried later", sid)
                result.failed.append(sid)
                continue
            result.evaluated += one.evaluated
            result.failed += one.failed
            result.skipped += one.skipped
    if result.failed:
        metrics.SHIPMENTS.labels("failed").inc(len(result.failed))
        async with maker() as session, session.begin():
            await postpone_failed(session, result.failed, now)
    metrics.BATCH_DURATION.labels(trigger).observe(time.perf_counter() - started)
    return result


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Entry of `coldchain alerts` / `coldchain up`: returns once `stop` is set."""
    engine = make_engine(settings.database_url or "", pool_size=4)
    try:
        # Evaluation, webhook and mail delivery and audit checkpoints share the role; each stops
        # on its own once `stop` is set (mail returns at once when COLDCHAIN_SMTP_URL is unset).
        await asyncio.gather(
            serve(make_sessionmaker(engine), settings.database_url or "",
                  config_from(settings), stop, period_s=settings.evaluator_period_s),
            run_delivery(settings, stop),
            run_mail(settings, stop),
            run_checkpoints(settings, stop),
        )
    finally:
        await engine.dispose()


async def serve(
    maker: async_sessionmaker[AsyncSession], database_url: str, config: EvalConfig,
    stop: asyncio.Event,
    *, period_s: float = 5.0, clock: Clock = utcnow,
) -> None:
    """Rounds until `stop`: woken by NOTIFY, else at most every min(1 s, period_s).

    Every round also sweeps: finding due shipments is one index lookup, so a time-driven
    condition (signal lost, deadline, escalation) is seen within a second of its due time.
    """
    wake = asyncio.Event()
    idle = min(IDLE_POLL_S, period_s)
    # A NOTIFY only wakes the loop early; a lost one (listener reconnecting) costs at most `idle`.
    listener = Listener(database_url, CHANNEL, lambda _payload: wake.set(), on_gap=wake.set)
    log.info("alerts worker started")
    async with listener.running():
        while not stop.is_set():
            wake.clear()
            try:
                await run_cycle(maker, config, clock, sweep=True)
            except Exception:  # a worker never dies of one bad cycle: log, count, go on
                metrics.ERRORS.labels("cycle").inc()
                log.exception("evaluation cycle failed; retrying")
                await wait_any(stop, within=1.0)
                continue
            await wait_any(wake, stop, within=idle)
            if wake.is_set() and not stop.is_set():
                # Let a burst of ingest commits coalesce into one round: fewer, larger batches.
                await wait_any(stop, within=GATHER_S)
    log.info("alerts worker stopped")
