"""Keyset (cursor) pagination: `{"items": […], "next_cursor": …}`, stable under inserts."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.core.errors import InvalidField

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, UUID):
        return {"u": str(value)}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "t" in value:
        return datetime.fromisoformat(value["t"])
    if isinstance(value, dict) and "u" in value:
        return UUID(value["u"])
    return value


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps([_encode(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, width: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = [_decode(v) for v in json.loads(raw)]
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidField("cursor", "not a cursor returned by this API") from exc
    if not isinstance(values, list) or len(values) != width:
        raise InvalidField("cursor", "not a cursor returned by this API")
    return values


def _after(keys: Sequence[ColumnElement[Any]], values: Sequence[Any]) -> ColumnElement[bool]:
    """(k1, k2, …) > (v1, v2, …) in ascending order, as an OR of prefixes (index friendly)."""
    clauses = []
    for i, key in enumerate(keys):
        equal = [keys[j] == values[j] for j in range(i)]
        clauses.append(and_(*equal, key > values[i]))
    return or_(*clauses)


def _check_types(keys: Sequence[ColumnElement[Any]], values: Sequence[Any]) -> None:
    """A forged cursor must fail as a 422, not as a database type error (500)."""
    for key, value in zip(keys, values, strict=True):
        try:
            expected = key.type.python_type
        except NotImplementedError:  # pragma: no cover - every key column has a Python type
            continue
        ok = isinstance(value, expected) and (expected is bool or not isinstance(value, bool))
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            ok = False
        if isinstance(value, datetime) and value.tzinfo is None:
            ok = False
        if isinstance(value, str) and "\x00" in value:
            ok = False
        if not ok:
            raise InvalidField("cursor", "not a cursor returned by this API")


async def paginate(
    session: AsyncSession,
    stmt: Select[Any],
    keys: Sequence[ColumnElement[Any]],
    *,
    cursor: str | None,
    limit: int,
    key_of: Any,
) -> tuple[list[Any], str | None]:
    """Rows of `stmt` ordered by `keys` after `cursor`; `key_of(row)` gives a row's key values."""
    if cursor:
        values = decode_cursor(cursor, len(keys))
        _check_types(keys, values)
        stmt = stmt.where(_after(keys, values))
    rows = list((await session.execute(stmt.order_by(*keys).limit(limit + 1))).all())
    next_cursor = encode_cursor(key_of(rows[limit - 1])) if len(rows) > limit else None
    return rows[:limit], next_cursor
