"""Rendering a loaded report in one of its formats: bytes, media type and a file name."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from app.reports import content, csv_export, epcis, pdf
from app.reports.data import ReportData

Format = Literal["json", "csv", "pdf", "epcis"]
FORMATS: tuple[str, ...] = ("json", "csv", "pdf", "epcis")
_JSON = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_INDENT_2


def _default(value: Any) -> Any:
    """What orjson does not know: driver UUIDs (asyncpg's own type) and bytes (as hex)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID) or type(value).__name__ == "UUID":
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_JSON, default=_default)


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    media_type: str
    filename: str


def render(d: ReportData, fmt: str, base_uri: str) -> Rendered:
    """CPU-bound: the API runs it in a worker thread."""
    stem = f"release-report-{d.shipment['reference']}"
    if fmt == "csv":
        return Rendered(csv_export.render(d.readings).encode(), "text/csv; charset=utf-8",
                        f"{stem}-readings.csv")
    if fmt == "epcis":
        return Rendered(dumps(epcis.document(d, base_uri)),
                        epcis.MEDIA_TYPE, f"{stem}.epcis.jsonld")
    report = content.build(d)
    if fmt == "pdf":
        return Rendered(pdf.render(report, d.readings), "application/pdf", f"{stem}.pdf")
    if fmt == "json":
        return Rendered(dumps(report), "application/json", f"{stem}.json")
    raise ValueError(f"unknown report format {fmt!r}; one of {', '.join(FORMATS)}")
