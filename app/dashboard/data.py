"""Reading a shipment's series from PostgreSQL fast (raw asyncpg for the big, columnar reads)."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.rules import max_gap_for
from app.core.models import Logger, Shipment, ShipmentLogger

# Binary COPY of fixed-width columns: parsed straight into numpy (no per-row Python objects).
# (asyncpg wraps it in COPY (…) TO STDOUT and binds the arguments safely.)
_SERIES_COPY = """
SELECT COALESCE(array_position($4::text[], logger_id), 0)::int4,
       (EXTRACT(EPOCH FROM ts) * 1000000)::int8, temp_c
FROM readings
WHERE shipment_id = $1 AND ts >= $2 AND ts < $3 {logger_filter}
ORDER BY ts, logger_id
"""
# Per row: field count (int16), then length (int32) + value for each of the three fields.
_ROW = np.dtype([("n", ">i2"), ("l1", ">i4"), ("logger", ">i4"), ("l2", ">i4"), ("us", ">i8"),
                 ("l3", ">i4"), ("temp", ">f8")])
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


@dataclass(frozen=True, slots=True)
class Series:
    """Columns of a shipment's readings in device-time order."""

    loggers: tuple[str, ...]
    logger_index: np.ndarray  # int32 index into `loggers` (-1: a logger not on the list)
    ts_us: np.ndarray  # int64 microseconds since the epoch
    temp_c: np.ndarray  # float64

    def by_logger(self) -> dict[str, list[float]]:
        """Each logger's device times in seconds (sorted, as the rows are)."""
        return {
            logger: (self.ts_us[self.logger_index == i] / 1e6).tolist()
            for i, logger in enumerate(self.loggers)
        }


def parse_binary_copy(data: bytes) -> np.ndarray:
    """Rows of a binary COPY with the fixed layout `_ROW`."""
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PostgreSQL binary COPY stream")
    ext_len = int.from_bytes(data[15:19], "big")
    start = 19 + ext_len
    body = data[start:len(data) - 2]  # the trailer is a field count of -1
    return np.frombuffer(body, dtype=_ROW)


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under the session's transaction (for columnar fetches)."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def fetch_series(
    session: AsyncSession, shipment_id: uuid.UUID, start: datetime, end: datetime,
    loggers: tuple[str, ...], logger_id: str | None = None,
) -> Series:
    apg = await driver_connection(session)
    args: list[Any] = [shipment_id, start, end, list(loggers)]
    logger_filter = ""
    if logger_id is not None:
        logger_filter = "AND logger_id = $5"
        args.append(logger_id)
    buffer = io.BytesIO()
    await apg.copy_from_query(
        _SERIES_COPY.format(logger_filter=logger_filter), *args, output=buffer, format="binary"
    )
    rows = parse_binary_copy(buffer.getvalue())
    return Series(
        loggers=loggers,
        logger_index=rows["logger"].astype("int32") - 1,
        ts_us=rows["us"].astype("int64"),
        temp_c=rows["temp"].astype("float64"),
    )


async def max_gaps(session: AsyncSession, shipment: Shipment) -> dict[str, float]:
    """Rule 2's max gap per logger of the shipment (its own, or 3 × the reporting interval)."""
    rows = await session.execute(
        select(ShipmentLogger.logger_id, Logger.reporting_interval_s)
        .join(Logger, Logger.id == ShipmentLogger.logger_id)
        .where(ShipmentLogger.shipment_id == shipment.id)
    )
    return {lg: max_gap_for(interval, shipment.max_gap_s) for lg, interval in rows.all()}


def shipment_end(shipment: Shipment, now: datetime) -> datetime:
    """Where a shipment's record ends: at receipt (the loggers' assignment ends), else now."""
    return shipment.received_at or now
