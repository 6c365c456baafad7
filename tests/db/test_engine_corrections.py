"""The evaluation follows the record as corrections move its end: nothing is lost for good."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tests.api.keys import bearer, make_key
from tests.db.engine_support import Clock, at, round_, state_of, store
from tests.factories import T0, shipment_setup


async def test_an_early_receipt_hides_the_excursion_until_it_is_corrected(
    client: httpx.AsyncClient, engine: AsyncEngine, db: AsyncSession,
) -> None:
    sid = (await shipment_setup(client, departed_at=T0.isoformat()))["id"]
    # 5 °C, then 12 °C from 60 to 90 min (out of 2–8 °C), then 5 °C again until 120 min.
    await store(engine, sid, "LOG-1", [(m, 12.0 if 60 <= m <= 90 else 5.0)
                                       for m in range(0, 121, 5)])
    clock = Clock(at(121))
    await round_(engine, clock)

    async def judged() -> tuple[int, float | None, list[str]]:
        state = await state_of(db, sid)
        excursions = (await client.get(f"/api/v1/shipments/{sid}/excursions")).json()["items"]
        return state.reading_count, state.max_c, [e["kind"] for e in excursions]

    assert await judged() == (25, 12.0, ["temperature_high"])
    coordinator = bearer(await make_key(client, "coordinator"))
    url = f"/api/v1/shipments/{sid}/events"
    events = {}
    for kind, minutes in (("delivered", 20), ("received", 30)):
        answer = await client.post(url, headers=coordinator, json={
            "type": kind, "at": at(minutes).isoformat(),
            "correction_reason": "entered from the courier's paper log"})
        assert answer.status_code == 201, answer.text
        events[kind] = answer.json()["id"]
    await round_(engine, clock)
    assert await judged() == (6, 5.0, [])  # 0–25 min: the excursion is out of the record
    moved = await client.post(f"{url}/{events['received']}/corrections", headers=coordinator,
                              json={"at": at(125).isoformat(),
                                    "reason": "the receipt form was misread: 10:05, not 08:30"})
    assert moved.status_code == 201, moved.text
    await round_(engine, clock)
    assert await judged() == (25, 12.0, ["temperature_high"])
