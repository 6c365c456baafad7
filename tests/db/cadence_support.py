"""A logger's journey played live against the real engine at any reporting interval.

Times are counted in reporting intervals (`k`); every reading is received at its own device time
(a live logger) unless an upload says otherwise, and the alerts worker runs exactly when it
would: after each delivery and at every `next_check_at` the engine asked for in between — the
routine re-check is switched off, so an alarm that needs a sweep comes only if the engine
scheduled one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alerts.rules import EvalConfig
from app.core.models import Alert, AlertEvent, ShipmentState
from tests.api.keys import bearer, make_key
from tests.db.engine_support import Clock, round_, store
from tests.factories import T0, shipment_setup

INTERVALS = (60, 300, 900, 3600)
# Only the marks the engine sets (alarm delay met, budget level, clear time, signal lost,
# escalation) bring the sweep back: a missing mark shows as a late or missing alert.
CONFIG = EvalConfig(max_check_interval_s=30 * 86400.0)


def clear_k(interval_s: int) -> int:
    """Intervals a value must be back in range before its episode ends: max(15 min, max gap)."""
    return max(900 // interval_s, 3)


@dataclass
class Journey:
    client: httpx.AsyncClient
    engine: AsyncEngine
    db: AsyncSession
    interval_s: int
    shipment_id: str = ""
    loggers: tuple[str, ...] = ("LOG-1",)
    clock: Clock = field(default_factory=lambda: Clock(T0))
    coordinator: dict[str, str] = field(default_factory=dict)

    @classmethod
    async def start(cls, client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
                    interval_s: int, *, loggers: tuple[str, ...] = ("LOG-1",),
                    **product: Any) -> Journey:
        journey = cls(client, engine, db, interval_s, loggers=loggers)
        shipment = await shipment_setup(
            client, departed_at=T0.isoformat(), logger_ids=loggers, interval_s=interval_s,
            product={"stability_budget_s": 365 * 86400, **product})
        journey.shipment_id = str(shipment["id"])
        journey.coordinator = bearer(await make_key(client, "coordinator"))
        return journey

    async def person(self, action: str, alert_id: uuid.UUID, comment: str) -> None:
        """A coordinator acknowledges or resolves an alert."""
        response = await self.client.post(f"/api/v1/alerts/{alert_id}/{action}",
                                          json={"comment": comment}, headers=self.coordinator)
        assert response.status_code == 200, response.text

    def t(self, k: float) -> datetime:
        return T0 + timedelta(seconds=k * self.interval_s)

    async def until(self, k: float) -> None:
        """Let the worker's sweep run on time up to `t(k)`."""
        end = self.t(k)
        for _ in range(200):  # bounded: a journey asks for a handful of sweeps per step
            self.db.expire_all()
            due = await self.db.scalar(select(ShipmentState.next_check_at).where(
                ShipmentState.shipment_id == uuid.UUID(self.shipment_id)))
            if due is None or due > end or due <= self.clock.now:
                break
            self.clock.set(due)
            await round_(self.engine, self.clock, config=CONFIG)
        self.clock.set(max(self.clock.now, end))

    async def live(self, points: Iterable[tuple[float, float]], logger_id: str = "LOG-1") -> None:
        """Readings (k, °C) received as they are taken, the worker running after each."""
        for k, temp in points:
            await self.until(k)
            await store(self.engine, self.shipment_id, logger_id, [(self._m(k), temp)])
            await round_(self.engine, self.clock, config=CONFIG)

    async def upload(self, points: Iterable[tuple[float, float]], at_k: float,
                     logger_id: str = "LOG-1") -> None:
        """Store-and-forward: readings taken earlier, all received at `t(at_k)`."""
        await self.until(at_k)
        await store(self.engine, self.shipment_id, logger_id,
                    [(self._m(k), temp) for k, temp in points], received=self.t(at_k))
        await round_(self.engine, self.clock, config=CONFIG)

    def _m(self, k: float) -> float:
        return k * self.interval_s / 60

    async def alerts(self) -> list[Alert]:
        self.db.expire_all()
        return list((await self.db.scalars(
            select(Alert).where(Alert.shipment_id == uuid.UUID(self.shipment_id))
            .order_by(Alert.opened_at, Alert.kind))).all())

    async def trail(self) -> list[tuple[str, str, datetime]]:
        """Every transition of every alert of the shipment: (kind, event, when), in order."""
        rows = (await self.db.execute(
            select(Alert.kind, AlertEvent.type, AlertEvent.at)
            .join(AlertEvent, AlertEvent.alert_id == Alert.id)
            .where(Alert.shipment_id == uuid.UUID(self.shipment_id))
            .order_by(AlertEvent.id))).all()
        return [(kind, type_, at) for kind, type_, at in rows]
