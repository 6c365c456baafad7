"""The hand-off to evaluation: queue a shipment in `evaluation_queue` and NOTIFY the workers.

Every writer that can change a judgement (ingest batches, shipment events, corrections, manual
alert resolutions) calls this in its own transaction, so the work is queued exactly when the data
commits; the alerts workers LISTEN on `CHANNEL` and claim queue rows (alerts/engine.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CHANNEL = "coldchain_eval"


def enqueue_sql(dirty: str) -> str:
    """One statement queueing every `(shipment_id, since)` row of the query `dirty`:
    `dirty_from` becomes the earlier of the queued and the new time, and each shipment is
    NOTIFYed (delivered at commit). Answers `(shipment_id, since)` per row. Rows are queued in
    shipment order, so concurrent writers lock queue rows in one order (no deadlock)."""
    return f"""
WITH dirty AS ({dirty}), queued AS (
    INSERT INTO evaluation_queue AS q (shipment_id, dirty_from)
    SELECT shipment_id, since FROM dirty ORDER BY shipment_id
    ON CONFLICT (shipment_id) DO UPDATE SET dirty_from = LEAST(q.dirty_from, EXCLUDED.dirty_from)
    RETURNING q.shipment_id
)
SELECT d.shipment_id, d.since, pg_notify('{CHANNEL}', d.shipment_id::text)
FROM dirty d JOIN queued USING (shipment_id)
"""


_ONE = text(enqueue_sql(
    "SELECT CAST(:shipment_id AS uuid) AS shipment_id, CAST(:since AS timestamptz) AS since"
))


async def enqueue_evaluation(session: AsyncSession, shipment_id: uuid.UUID, since: datetime) -> None:
    """Ask the evaluation engine to (re)judge a shipment from `since` (device time)."""
    await session.execute(_ONE, {"shipment_id": shipment_id, "since": since})
