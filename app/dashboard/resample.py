"""Resampling a temperature series into min/mean/max buckets (pandas); empty buckets stay empty."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

# The resolutions the API offers, as pandas offset aliases (pandas 3: `min` and `h`, not T/H).
EVERY = {"1min": "1min", "5min": "5min", "15min": "15min", "1h": "1h", "6h": "6h", "1d": "1D"}
MAX_BUCKETS = 200_000
_EPOCH_DAY = date(1970, 1, 1)


class TooManyBuckets(ValueError):
    def __init__(self, buckets: int) -> None:
        super().__init__(f"{buckets} buckets: choose a coarser `every` or a shorter window")
        self.buckets = buckets


def bucket_seconds(every: str) -> float:
    return float(pd.Timedelta(EVERY[every]).total_seconds())


def resample(
    ts_us: Sequence[int] | np.ndarray, temp_c: Sequence[float] | np.ndarray, every: str,
    start_us: int | None = None, end_us: int | None = None,
) -> dict[str, np.ndarray]:
    """Buckets aligned to the clock (midnight UTC) covering the readings or [start, end).

    Returns columns `ts_us` (bucket start), `min_c`, `mean_c`, `max_c` (NaN where the bucket has
    no reading: a gap stays a gap, nothing is interpolated) and `count`.
    """
    rule = EVERY[every]
    step_us = int(pd.Timedelta(rule).total_seconds() * 1_000_000)
    ts = np.asarray(ts_us, dtype="int64")
    values = np.asarray(temp_c, dtype="float64")
    lo = start_us if start_us is not None else (int(ts.min()) if ts.size else None)
    hi = end_us if end_us is not None else (int(ts.max()) + 1 if ts.size else None)
    if lo is None or hi is None or hi <= lo:
        empty = np.array([], dtype="float64")
        return {"ts_us": np.array([], dtype="int64"), "min_c": empty, "mean_c": empty,
                "max_c": empty, "count": np.array([], dtype="int64")}
    first = lo - lo % step_us
    buckets = (hi - first + step_us - 1) // step_us
    if buckets > MAX_BUCKETS:
        raise TooManyBuckets(int(buckets))
    index = pd.to_datetime(ts, unit="us", utc=True)
    series = pd.Series(values, index=index).sort_index()
    agg = series.resample(rule, origin="start_day").agg(["min", "mean", "max", "count"])
    grid = pd.date_range(
        pd.Timestamp(first, unit="us", tz="UTC"), periods=int(buckets), freq=rule
    )
    agg = agg.reindex(grid)
    return {
        "ts_us": grid.as_unit("us").asi8,
        "min_c": agg["min"].to_numpy(dtype="float64"),
        "mean_c": agg["mean"].to_numpy(dtype="float64"),
        "max_c": agg["max"].to_numpy(dtype="float64"),
        "count": agg["count"].fillna(0).to_numpy(dtype="int64"),
    }


def iso_utc(ts_us: np.ndarray) -> list[str]:
    """RFC 3339 UTC strings (whole seconds) for microsecond epochs.

    Bucket starts repeat their day and their time of day: format each distinct one once.
    """
    secs = np.asarray(ts_us, dtype="int64") // 1_000_000
    days = secs // 86_400
    sod = secs - days * 86_400
    day_text = {d: (_EPOCH_DAY + timedelta(days=d)).isoformat() for d in np.unique(days).tolist()}
    sod_text = {s: f"T{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}Z"
                for s in np.unique(sod).tolist()}
    return [day_text[d] + sod_text[s] for d, s in zip(days.tolist(), sod.tolist(), strict=True)]


def bucket_rows(columns: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Row dicts for orjson, which writes NaN (an empty bucket) as null."""
    return [
        {"ts": t, "min_c": lo, "mean_c": mean, "max_c": hi, "count": n}
        for t, lo, mean, hi, n in zip(
            iso_utc(columns["ts_us"]), columns["min_c"].tolist(), columns["mean_c"].tolist(),
            columns["max_c"].tolist(), columns["count"].tolist(), strict=True,
        )
    ]
