"""One shipment's readings: raw in device-time order (paginated), or resampled min/mean/max."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from app.api.deps import CurrentPrincipal, SessionDep
from app.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, paginate
from app.core.errors import InvalidField
from app.core.models import Reading, Shipment, utcnow
from app.dashboard import data, gaps, resample
from app.schemas.common import UtcDatetime
from app.schemas.dashboard import Every, ReadingsAnswer
from app.services import shipments as svc

router = APIRouter(tags=["shipments"])
_COLUMNS = ("logger_id", "ts", "temp_c", "lat", "lon", "battery_pct", "light", "shock_g",
            "humidity_pct", "ln2_level_pct", "seq", "received_at")
_JSON = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_SERIALIZE_NUMPY


# Loggers' clocks may run up to 10 minutes ahead (ingest accepts them): include such readings.
FUTURE_SKEW = timedelta(minutes=10)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def json_response(body: Any) -> Response:
    return Response(orjson.dumps(body, option=_JSON), media_type="application/json")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def gap_rows(items: list[gaps.Gap]) -> list[dict[str, Any]]:
    return [{"start": _iso(g.start), "end": _iso(g.end), "duration_s": g.duration_s,
             "logger_id": g.logger_id} for g in items]


@router.get(
    "/shipments/{shipment_id}/readings", response_model=None,
    responses={200: {"model": ReadingsAnswer}},
)
async def shipment_readings(
    shipment_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    from_: Annotated[UtcDatetime | None, Query(alias="from", description="device time ≥")] = None,
    to: Annotated[UtcDatetime | None, Query(description="device time <")] = None,
    every: Annotated[Every | None, Query(description="resample into buckets")] = None,
    logger_id: Annotated[str | None, Query(max_length=64)] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Response:
    shipment = await svc.get_visible_shipment(session, principal, shipment_id)
    if from_ is not None and to is not None and to <= from_:
        raise InvalidField("to", "must be after from")
    if every is None:
        return json_response(await _raw(session, shipment, from_, to, logger_id, cursor, limit))
    return json_response(await _resampled(session, shipment, from_, to, logger_id, every))


async def _raw(
    session: Any, shipment: Shipment, start: datetime | None, end: datetime | None,
    logger_id: str | None, cursor: str | None, limit: int,
) -> dict[str, Any]:
    stmt = select(*(getattr(Reading, c) for c in _COLUMNS)).where(
        Reading.shipment_id == shipment.id
    )
    if start is not None:
        stmt = stmt.where(Reading.ts >= start)
    if end is not None:
        stmt = stmt.where(Reading.ts < end)
    if logger_id is not None:
        stmt = stmt.where(Reading.logger_id == logger_id)
    rows, next_cursor = await paginate(
        session, stmt, [Reading.ts, Reading.logger_id], cursor=cursor, limit=limit,
        key_of=lambda r: [r.ts, r.logger_id],
    )
    return {"items": [dict(zip(_COLUMNS, r, strict=True)) for r in rows],
            "next_cursor": next_cursor}


async def _resampled(
    session: Any, shipment: Shipment, start: datetime | None, end: datetime | None,
    logger_id: str | None, every: str,
) -> dict[str, Any]:
    now = utcnow()
    record_end = data.shipment_end(shipment, now)
    start = start or shipment.packed_at
    fetch_end = end or shipment.received_at or now + FUTURE_SKEW
    max_gap = await data.max_gaps(session, shipment)
    if logger_id is not None:
        if logger_id not in max_gap:
            raise InvalidField("logger_id", f"logger {logger_id} is not on this shipment")
        max_gap = {logger_id: max_gap[logger_id]}
    # Read back one max gap before the window: a reading there still holds its value inside it.
    lookback = timedelta(seconds=max(max_gap.values(), default=0.0))
    series = await data.fetch_series(
        session, shipment.id, start - lookback, fetch_end, tuple(sorted(max_gap)), logger_id
    )
    if end is None:
        last = _from_us(int(series.ts_us[-1]) + 1) if series.ts_us.size else now
        end = shipment.received_at or max(now, last)
    if end <= start:
        raise InvalidField("from", "the window is empty")
    inside = series.ts_us >= _us(start)
    try:
        buckets = resample.resample(
            series.ts_us[inside], series.temp_c[inside], every,
            start_us=_us(start), end_us=_us(end),
        )
    except resample.TooManyBuckets as exc:
        raise InvalidField("every", str(exc)) from exc
    per_logger = series.by_logger()
    gap_end = min(record_end, end).timestamp()
    by_logger, common = gaps.all_gaps(
        per_logger, max_gap, shipment.packed_at.timestamp(), gap_end
    )
    lo, hi = start.timestamp(), end.timestamp()
    return {
        "items": resample.bucket_rows(buckets),
        "next_cursor": None,
        "every": every,
        "window_start": start,
        "window_end": end,
        "gaps": gap_rows(gaps.clip(common, lo, hi)),
        "logger_gaps": gap_rows(gaps.clip(by_logger, lo, hi)),
    }
