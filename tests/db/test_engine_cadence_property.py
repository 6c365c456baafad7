"""Cadence invariance through the real engine: one physical temperature history, sampled every 1,
5, 15 and 60 min at any phase and delivered in any split, gives the same alerts (kind, severity,
state, retroactive) and excursions, and time out of range within one interval of the truth.

The histories are those a 60-min logger can resolve: constant segments of whole hours (on a grid
of any offset); an excursion of one kind starts at least 4 h (the hourly clear time, 3 h, plus an
interval) after the last one of that kind ended. The engine is asked at moments where the history
is unambiguous at every cadence: not within 4 h after an excursion ended, and not within an
interval of an alarm delay being met. Everything goes through `alerts.worker` against
PostgreSQL: readings stored as ingest stores them, saved state carried from round to round.
"""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.models import Alert, Excursion, ShipmentState
from tests.db.cadence_support import CONFIG, INTERVALS
from tests.db.engine_support import Clock, round_, store
from tests.factories import T0, lane, packaging, post, site

H = 3600
LEVELS = {"in": 5.0, "high": 9.5, "critical_high": 16.0, "low": 0.5, "critical_low": -2.0}
# The alert kinds each level holds (critical limits 0 and 15 °C around a 2–8 °C range).
KINDS = {"in": (), "high": ("temperature_high",), "low": ("temperature_low",),
         "critical_high": ("temperature_high", "temperature_critical"),
         "critical_low": ("temperature_low", "temperature_critical")}
SEPARATION = 4 * H  # same-kind excursions, and the engine's moments after an excursion
_ids = itertools.count()


@dataclass(frozen=True)
class History:
    offset_s: int  # the grid's offset from T0: edges at T0 + offset + whole hours
    segments: tuple[tuple[str, int], ...]  # (level, hours)
    delay_s: int
    budget_s: int

    def spans(self) -> list[tuple[str, int, int]]:
        """(level, start, end) in seconds from T0."""
        out, t = [], self.offset_s
        for level, hours in self.segments:
            out.append((level, t, t + hours * H))
            t += hours * H
        return out

    @property
    def end_s(self) -> int:
        return self.spans()[-1][2]

    def kind_spans(self) -> dict[str, list[tuple[int, int]]]:
        """Each kind's contiguous periods (segments of one kind touching merge)."""
        out: dict[str, list[tuple[int, int]]] = {}
        for level, start, end in self.spans():
            for kind in KINDS[level]:
                periods = out.setdefault(kind, [])
                if periods and periods[-1][1] == start:
                    periods[-1] = (periods[-1][0], end)
                else:
                    periods.append((start, end))
        return out

    def resolvable(self) -> bool:
        return all(b[0] - a[1] >= SEPARATION for periods in self.kind_spans().values()
                   for a, b in itertools.pairwise(periods))

    def clean(self, s: int) -> bool:
        """May the engine be asked at `s` (seconds from T0) with the same answer at every cadence?"""
        for kind, periods in self.kind_spans().items():
            delay = 0 if kind == "temperature_critical" else self.delay_s
            for start, end in periods:
                if end <= s - SEPARATION or start >= s:
                    continue  # long cleared, or not begun
                if end < s:
                    return False  # ended, maybe not clear yet at an hourly cadence
                if not (s - start >= delay + H or s - start < delay):
                    return False  # the delay may or may not be met, by up to an interval
        return True

    def level_at(self, s: int) -> str:
        return next((level for level, start, end in self.spans() if start <= s < end), "in")

    def out_of_range_s(self) -> int:
        return sum(end - start for level, start, end in self.spans() if level != "in")


@st.composite
def histories(draw: st.DrawFn) -> History:
    segments: list[tuple[str, int]] = [("in", draw(st.integers(1, 3)))]
    for i in range(draw(st.integers(1, 3))):
        if i:
            segments.append(("in", draw(st.integers(4, 6))))
        for _ in range(draw(st.integers(1, 3))):
            segments.append((draw(st.sampled_from(sorted(set(LEVELS) - {"in"}))),
                             draw(st.integers(1, 3))))
    segments.append(("in", 5))
    history = History(draw(st.integers(0, H - 1)), tuple(segments),
                      draw(st.sampled_from([0, 1800, 5400])),
                      draw(st.sampled_from([2 * H, 8 * H, 30 * 86400])))
    assume(history.resolvable())
    return history


@dataclass(frozen=True)
class Delivery:
    phases: tuple[int, ...]  # per cadence, seconds into its interval
    cuts: tuple[int, ...]  # moments (s from T0) the engine runs, data up to then delivered
    chunks: int  # ingest transactions per delivery


@st.composite
def deliveries(draw: st.DrawFn, history: History) -> Delivery:
    phases = tuple(draw(st.integers(0, interval - 1)) for interval in INTERVALS)
    clean = [s for s in range(H // 2, history.end_s, H // 2) if history.clean(s)]
    # Moments inside an excursion are where cadences could disagree (an alarm delay met by
    # some samples and not others): drawn from separately, so that most examples have one.
    inside = [s for s in clean if history.level_at(s) != "in"]
    outside = [s for s in clean if history.level_at(s) == "in"]
    cuts = set()
    for pool in (inside, outside):
        if pool:
            cuts.update(draw(st.lists(st.sampled_from(pool), max_size=2)))
    return Delivery(phases, tuple(sorted(cuts)), draw(st.integers(1, 3)))


async def _shipments(client: httpx.AsyncClient, history: History) -> dict[int, tuple[str, str]]:
    """One shipment per cadence (its own logger), the same product, lane and packing."""
    n = next(_ids)
    origin, destination = await site(client, f"O{n}"), await site(client, f"D{n}")
    product = await post(client, "/products", {
        "name": f"P{n}", "temp_min_c": 2.0, "temp_max_c": 8.0, "critical_min_c": 0.0,
        "critical_max_c": 15.0, "alarm_delay_s": history.delay_s,
        "stability_budget_s": history.budget_s})
    common = {"lane_id": await lane(client, origin, destination, waypoints=[]),
              "product_id": product["id"], "packaging_id": await packaging(client, 400.0),
              "packed_at": T0.isoformat(), "departed_at": T0.isoformat()}
    out = {}
    for interval in INTERVALS:
        logger_id = f"CAD-{n}-{interval}"
        await post(client, "/loggers", {"id": logger_id, "reporting_interval_s": interval})
        shipment = await post(client, "/shipments", {
            **common, "reference": f"CAD-{n}-{interval}", "logger_ids": [logger_id]})
        out[interval] = (shipment["id"], logger_id)
    return out


def _samples(history: History, interval: int, phase: int) -> list[tuple[int, float]]:
    """The logger's readings: (seconds from T0, °C) every `interval` from `phase`."""
    return [(t, LEVELS[history.level_at(t)]) for t in range(phase, history.end_s, interval)]


async def _deliver(engine: AsyncEngine, shipments: dict[int, tuple[str, str]], history: History,
                   delivery: Delivery) -> None:
    """Each logger's readings up to every cut (received as taken, in `chunks` ingest
    transactions), then one worker round a second after the cut; the last one after the end."""
    samples = {i: _samples(history, i, p) for i, p in zip(INTERVALS, delivery.phases, strict=True)}
    clock = Clock(T0)
    for start, cut in itertools.pairwise([0, *delivery.cuts, history.end_s]):
        for interval, (sid, logger_id) in shipments.items():
            batch = [(t / 60, temp) for t, temp in samples[interval] if start <= t < cut]
            step = max(1, -(-len(batch) // delivery.chunks))
            for i in range(0, len(batch), step):
                await store(engine, sid, logger_id, batch[i:i + step])
        clock.set(T0 + timedelta(seconds=cut + 1))
        await round_(engine, clock, config=CONFIG)


async def _outcome(db: AsyncSession, sid: str) -> dict[str, Any]:
    db.expire_all()
    key = uuid.UUID(sid)
    alerts = (await db.scalars(select(Alert).where(Alert.shipment_id == key))).all()
    excursions = (await db.scalars(select(Excursion).where(Excursion.shipment_id == key))).all()
    state = await db.get(ShipmentState, key)
    assert state is not None
    return {
        "alerts": Counter((a.kind, a.severity, a.state, a.retroactive) for a in alerts),
        "excursions": Counter((e.kind, e.alarmed) for e in excursions),
        "out_s": state.time_out_of_range_s,
    }


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.data())
async def test_the_same_history_at_any_cadence_gives_the_same_alerts(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession, data: st.DataObject,
) -> None:
    history = data.draw(histories(), label="history")
    delivery = data.draw(deliveries(history), label="delivery")
    shipments = await _shipments(client, history)
    await _deliver(engine, shipments, history, delivery)
    outcomes = {i: await _outcome(db, sid) for i, (sid, _) in shipments.items()}
    reference = outcomes[60]
    assert reference["excursions"], "every history has an excursion"
    for interval, outcome in outcomes.items():
        assert outcome["alerts"] == reference["alerts"], (interval, outcome, reference)
        assert outcome["excursions"] == reference["excursions"], interval
        assert abs(outcome["out_s"] - history.out_of_range_s()) <= interval
