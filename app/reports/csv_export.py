"""The complete reading record as CSV, written so that parsing it back gives the stored values.

Floats are written with `repr` (the shortest text that parses back to the same double),
timestamps as RFC 3339 UTC with microseconds, booleans as true/false, bytes as hex, NULL empty.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from app.reports.data import READING_COLUMNS, RecordReading


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def render(readings: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(READING_COLUMNS)
    for row in readings:
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue()


def sha256(readings: Iterable[Sequence[Any]]) -> str:
    """The digest of the CSV export: the PDF and JSON name it, tying them to the full record."""
    return hashlib.sha256(render(readings).encode()).hexdigest()


_PARSERS: dict[str, Any] = {
    "ts": lambda v: datetime.fromisoformat(v),
    "received_at": lambda v: datetime.fromisoformat(v),
    "temp_c": float, "lat": float, "lon": float, "battery_pct": float, "shock_g": float,
    "humidity_pct": float, "ln2_level_pct": float,
    "light": lambda v: v == "true",
    "seq": int,
    "payload_sha256": bytes.fromhex,
    "logger_id": str,
}


def parse(text: str) -> list[RecordReading]:
    """The inverse of `render` (used by tests and by anyone re-importing a record)."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    if tuple(header) != READING_COLUMNS:
        raise ValueError(f"unexpected columns: {header}")
    return [
        RecordReading._make(None if cell == "" else _PARSERS[col](cell)
                            for col, cell in zip(header, row, strict=True))
        for row in reader
    ]
