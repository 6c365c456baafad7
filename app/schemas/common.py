"""Common field types: UTC timestamps, finite numbers, strict request bodies."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 has no UTC time
        raise ValueError("is out of the representable range once converted to UTC") from None


# Control characters (C0, DEL, C1), invisible format characters (bidi overrides, zero-width),
# surrogates and line/paragraph separators: text that renders differently from what it is, or
# breaks headers, CSV and PDF lines downstream.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _visible(value: str) -> str:
    for c in value:
        if unicodedata.category(c) in _HIDDEN:
            raise ValueError(f"must not contain control or invisible characters (U+{ord(c):04X})")
    return value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Celsius = Annotated[float, Field(ge=-273.15, le=100, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_visible)]
# An identifier people type and read: a shipment reference (file names, report headers).
Reference = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_visible)]


class StrictBody(BaseModel):
    """Request bodies: unknown fields are rejected rather than silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)
# A kind of shipment document (lane requirements, uploads): `import_license`, `qp_release_plan`.
DocumentKind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
