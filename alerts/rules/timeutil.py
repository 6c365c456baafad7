"""Instants as integer microseconds since the epoch; naive datetimes are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

US = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class NaiveDatetimeError(ValueError):
    """A datetime without a UTC offset: the evaluation never guesses a time zone."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} must be timezone-aware")
        self.what = what


def require_aware(value: datetime, what: str = "datetime") -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(what)
    return value


def to_us(value: datetime, what: str = "datetime") -> int:
    """Exact microseconds since the epoch (timedelta arithmetic, no float rounding)."""
    require_aware(value, what)
    return (value - _EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def opt_from_us(us: int | None) -> datetime | None:
    return None if us is None else from_us(us)


def seconds(us: int) -> float:
    return us / US
