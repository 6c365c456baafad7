"""Helpers for the engine tests: store readings as ingest does, run worker rounds on a clock."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alerts import worker
from alerts.engine import BatchResult
from alerts.rules import EvalConfig
from app.core.db import make_sessionmaker
from app.core.handoff import enqueue_evaluation
from app.core.models import Alert, Reading, ShipmentState
from tests.factories import T0, post


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Clock:
    """The injected clock: tests move it, the engine reads it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now


async def store(
    engine: AsyncEngine, shipment_id: str, logger_id: str,
    points: Iterable[tuple[float, float]], *, received: datetime | None = None,
    **fields: Any,
) -> None:
    """What ingest does in one transaction: insert readings, mark the shipment dirty."""
    rows = [
        {"logger_id": logger_id, "ts": at(m), "shipment_id": uuid.UUID(shipment_id),
         "temp_c": t, "received_at": received or at(m), **fields}
        for m, t in points
    ]
    async with make_sessionmaker(engine)() as session, session.begin():
        await session.execute(insert(Reading).on_conflict_do_nothing(), rows)
        await enqueue_evaluation(session, uuid.UUID(shipment_id), min(r["ts"] for r in rows))


async def round_(engine: AsyncEngine, clock: Clock, *, sweep: bool = True,
                 config: EvalConfig | None = None) -> int:
    """One worker round on the injected clock."""
    return await worker.run_cycle(make_sessionmaker(engine), config or EvalConfig(), clock,
                                  sweep=sweep)


async def sweep(engine: AsyncEngine, clock: Clock, config: EvalConfig | None = None) -> BatchResult:
    async with make_sessionmaker(engine)() as session, session.begin():
        return await worker.sweep_due(session, now=clock(), config=config or EvalConfig())


async def alerts_of(session: AsyncSession, shipment_id: str) -> list[Alert]:
    session.expire_all()
    return list((await session.scalars(
        select(Alert).where(Alert.shipment_id == uuid.UUID(shipment_id))
        .order_by(Alert.opened_at, Alert.kind))).all())


async def state_of(session: AsyncSession, shipment_id: str) -> ShipmentState:
    session.expire_all()
    row = await session.get(ShipmentState, uuid.UUID(shipment_id))
    assert row is not None
    return row


async def count(session: AsyncSession, model: Any, **where: Any) -> int:
    stmt = select(func.count()).select_from(model)
    for key, value in where.items():
        stmt = stmt.where(getattr(model, key) == value)
    return int(await session.scalar(stmt) or 0)


async def event(client: httpx.AsyncClient, shipment_id: str, type_: str, minutes: float) -> None:
    await post(client, f"/shipments/{shipment_id}/events", {"type": type_, "at": at(minutes).isoformat()})
