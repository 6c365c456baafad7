"""Scenarios at the reporting intervals real loggers use (1, 5, 15, 60 min), live against the real
engine: every alert transition asserted exactly, with its time (in intervals `k`).

The clear time is max(15 min, the max gap = 3 intervals): `c` intervals (15, 3, 3, 3).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from alerts.rules.model import ALL_KINDS
from tests.db.cadence_support import INTERVALS, Journey, clear_k
from tests.db.engine_support import state_of

pytestmark = pytest.mark.parametrize("interval", INTERVALS)
HIGH, BUDGET, LOST = "temperature_high", "stability_budget", "signal_lost"
ESCALATION = timedelta(seconds=900)
US = timedelta(microseconds=1)


def in_order(*events: tuple[str, str, datetime]) -> list[tuple[str, str, datetime]]:
    """Expected events by time; one round writes its kinds in the engine's kind order."""
    return sorted(events, key=lambda e: (e[2], ALL_KINDS.index(e[0])))


async def test_hovering_at_a_limit_is_one_alert_at_any_interval(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession, interval: int,
) -> None:
    j = await Journey.start(client, engine, db, interval)
    c = clear_k(interval)
    hover = [(k, 8.1 if k % 2 == 0 else 7.9) for k in range(8)]  # last warm reading: k = 6
    await j.live([*hover, *((k, 7.9) for k in range(8, 8 + c))])
    assert await j.trail() == [(HIGH, "opened", j.t(0)), (HIGH, "resolved", j.t(7 + c))]
    (alert,) = await j.alerts()
    assert (alert.occurrences, alert.details["duration_s"], alert.peak_c) == (4, 7 * interval, 8.1)
    assert alert.details["cleared_at"] == j.t(7).isoformat()
    assert alert.resolved_by == "system"


async def test_a_person_resolved_hovering_alert_is_not_reopened_by_the_same_hovering(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession, interval: int,
) -> None:
    j = await Journey.start(client, engine, db, interval)
    c = clear_k(interval)
    hover = [(k, 8.1 if k % 2 == 0 else 7.9) for k in range(8)]
    await j.live(hover[:4])
    (alert,) = await j.alerts()
    await j.person("resolve", alert.id, "probe against the wall, product fine")
    await j.live([*hover[4:], *((k, 7.9) for k in range(8, 8 + c))])
    assert [(k, e) for k, e, _ in await j.trail()] == [(HIGH, "opened"), (HIGH, "resolved")]
    # Once clear, a later excursion is a new episode: a new alert.
    await j.live([(8 + c, 8.5)])
    trail = await j.trail()
    assert trail[-1] == (HIGH, "opened", j.t(8 + c)) and len(trail) == 3
    assert [a.state for a in await j.alerts()] == ["resolved", "open"]


async def test_alarm_delay_counts_an_excursion_to_its_latest_evidence(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession, interval: int,
) -> None:
    j = await Journey.start(client, engine, db, interval, alarm_delay_s=5 * interval)
    c = clear_k(interval)
    # 4 intervals out of range: shorter than the delay, recorded but never alarmed.
    await j.live([(0, 5.0), *((k, 9.0) for k in range(1, 5)), (5, 5.0), (6, 5.0), (7, 5.0)])
    # 7 intervals out: alarms once it has lasted 5, at k = 13.
    await j.live([*((k, 9.0) for k in range(8, 15)), *((k, 5.0) for k in range(15, 16 + c))])
    # Out at k0, k0+1, then nothing for 5 intervals (3 held, 2 unknown), out again at k0+6:
    # it has lasted 6 intervals by then, and that reading proves it.
    k0 = 17 + c
    await j.live([(k0, 9.0), (k0 + 1, 9.0)])
    await j.live([(k0 + 6, 9.0), (k0 + 7, 9.0), *((k, 5.0) for k in range(k0 + 8, k0 + 9 + c))])
    assert await j.trail() == in_order(
        (HIGH, "opened", j.t(13)), (HIGH, "resolved", j.t(15 + c)),
        (LOST, "opened", j.t(k0 + 4) + US), (LOST, "resolved", j.t(k0 + 6)),
        (HIGH, "opened", j.t(k0 + 6)), (HIGH, "resolved", j.t(k0 + 8 + c)))
    excursions = (await client.get(f"/api/v1/shipments/{j.shipment_id}/excursions")).json()
    assert [(e["alarmed"], e["duration_s"], e["unknown_s"]) for e in excursions["items"]] == [
        (False, 4 * interval, 0), (True, 7 * interval, 0),
        (True, 6 * interval, 2 * interval)]  # the budget counts only known time


async def test_stability_budget_levels_on_time_between_readings(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession, interval: int,
) -> None:
    j = await Journey.start(client, engine, db, interval, stability_budget_s=4 * interval)
    c = clear_k(interval)
    k1 = 4 + c  # the second excursion, after the first one cleared
    await j.live([(0, 5.0), (1, 9.0), (2, 9.0), *((k, 5.0) for k in range(3, k1))])
    await j.live([(k1, 9.0), (k1 + 1, 9.0), (k1 + 2, 9.0),
                  *((k, 5.0) for k in range(k1 + 3, k1 + 4 + c))])
    assert await j.trail() == in_order(
        (HIGH, "opened", j.t(1)), (BUDGET, "opened", j.t(3)), (HIGH, "resolved", j.t(3 + c)),
        (HIGH, "opened", j.t(k1)),
        (BUDGET, "updated", j.t(k1 + 1.2)),  # 80 % of 4 intervals, between two readings
        (BUDGET, "updated", j.t(k1 + 2)), (BUDGET, "escalated", j.t(k1 + 2) + ESCALATION),
        (HIGH, "resolved", j.t(k1 + 3 + c)))
    budget = next(a for a in await j.alerts() if a.kind == BUDGET)
    assert (budget.severity, budget.state, budget.details["level_pct"]) == (
        "critical", "escalated", 100)
    assert (await state_of(db, j.shipment_id)).stability_budget_used_s == 5 * interval


async def test_a_silent_logger_alarms_on_its_held_value(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession, interval: int,
) -> None:
    j = await Journey.start(client, engine, db, interval, alarm_delay_s=2 * interval,
                            stability_budget_s=2 * interval)
    await j.live([(0, 5.0), (1, 5.0), (2, 5.0), (3, 5.0), (4, 10.0)])  # then nothing at all
    await j.until(12 + ESCALATION / timedelta(seconds=interval))
    assert await j.trail() == in_order(
        (BUDGET, "opened", j.t(5)), (BUDGET, "updated", j.t(5.6)),
        (HIGH, "opened", j.t(6)), (BUDGET, "updated", j.t(6)),
        (BUDGET, "escalated", j.t(6) + ESCALATION), (LOST, "opened", j.t(7) + US))
    warm = next(a for a in await j.alerts() if a.kind == HIGH)
    assert (warm.state, warm.retroactive, warm.condition_since, warm.peak_c) == (
        "open", False, j.t(4), 10.0)
    state = await state_of(db, j.shipment_id)
    assert state.time_out_of_range_s == 3 * interval  # held up to the max gap, then unknown


async def test_late_data_is_retroactive_then_a_live_episode_reopens_it(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession, interval: int,
) -> None:
    j = await Journey.start(client, engine, db, interval)
    c = clear_k(interval)
    await j.live([(k, 5.0) for k in range(6)])
    # Store-and-forward after a flight: out of range at k8–10, uploaded at k20.
    await j.upload([(k, 9.0 if 8 <= k <= 10 else 5.0) for k in range(6, 21)], at_k=20)
    await j.live([(k, 5.0) for k in range(21, 22 + c)])
    (warm,) = [a for a in await j.alerts() if a.kind == HIGH]
    assert (warm.state, warm.retroactive, warm.condition_since) == ("open", True, j.t(8))
    await j.person("ack", warm.id, "seen: courier confirms the flight hold")
    k1 = 22 + c
    await j.live([(k1, 9.0), (k1 + 1, 9.0), *((k, 5.0) for k in range(k1 + 2, k1 + 3 + c))])
    trail = await j.trail()
    acknowledged = next(e for e in trail if e[1] == "acknowledged")
    assert trail == [
        (LOST, "opened", j.t(8) + US), (HIGH, "opened", j.t(20)), (LOST, "resolved", j.t(20)),
        acknowledged, (HIGH, "updated", j.t(k1)), (HIGH, "resolved", j.t(k1 + 2 + c))]
    (warm,) = [a for a in await j.alerts() if a.kind == HIGH]
    assert (warm.retroactive, warm.reopened_at, warm.acknowledged_by) == (False, j.t(k1), None)


async def test_two_loggers_one_alert_with_the_worst_peak(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession, interval: int,
) -> None:
    j = await Journey.start(client, engine, db, interval, loggers=("LOG-1", "LOG-2"))
    c = clear_k(interval)
    end = 9 + c
    for k in range(end):  # LOG-2 reports half an interval after LOG-1
        await j.live([(k, 9.0 if 2 <= k <= 4 else 5.0)], "LOG-1")
        await j.live([(k + 0.5, 10.0 if 3 <= k <= 6 else 5.0)], "LOG-2")
    assert await j.trail() == [(HIGH, "opened", j.t(2)), (HIGH, "updated", j.t(3.5)),
                               (HIGH, "resolved", j.t(7.5 + c))]
    (alert,) = await j.alerts()
    assert (alert.peak_c, alert.details["loggers"], alert.occurrences) == (
        10.0, ["LOG-1", "LOG-2"], 2)
    assert (await state_of(db, j.shipment_id)).time_out_of_range_s == 4 * interval
