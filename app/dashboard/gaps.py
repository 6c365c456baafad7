"""Data gaps by rule 2: time past a logger's max gap is unknown, and a shipment's when all are."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

Interval = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Gap:
    """An unknown period in epoch seconds; `logger_id` None means no logger had a value."""

    start: float
    end: float
    logger_id: str | None = None

    @property
    def duration_s(self) -> float:
        return self.end - self.start


def logger_gaps(
    ts: Sequence[float], max_gap_s: float, start: float | None = None, end: float | None = None
) -> list[Interval]:
    """Unknown intervals of one logger's sorted device times within [start, end].

    A reading holds its value for at most `max_gap_s`; the time past that until the next reading
    is a gap. Before the first reading the value is unknown; that lead-in counts as a gap only
    when it is longer than the max gap (a logger may start a little after packing).
    """
    if max_gap_s <= 0:
        raise ValueError("max_gap_s must be positive")
    if not ts:
        return [(start, end)] if start is not None and end is not None and end > start else []
    out: list[Interval] = []
    if start is not None and ts[0] - start > max_gap_s:
        out.append((start, ts[0]))
    prev = ts[0]
    for t in ts[1:]:
        if t - prev > max_gap_s:
            out.append((prev + max_gap_s, t))
        prev = t
    if end is not None and end - prev > max_gap_s:
        out.append((prev + max_gap_s, end))
    return _clip(out, start, end)


def _clip(intervals: Iterable[Interval], start: float | None, end: float | None) -> list[Interval]:
    lo = float("-inf") if start is None else start
    hi = float("inf") if end is None else end
    return [(max(a, lo), min(b, hi)) for a, b in intervals if min(b, hi) > max(a, lo)]


def clip(items: Iterable[Gap], start: float, end: float) -> list[Gap]:
    """Gaps cut to the window [start, end]."""
    return [
        Gap(max(g.start, start), min(g.end, end), g.logger_id)
        for g in items if min(g.end, end) > max(g.start, start)
    ]


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """Intersection of two sorted, disjoint interval lists."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def shipment_gaps(per_logger: Mapping[str, Sequence[Interval]]) -> list[Interval]:
    """Periods when every logger of the shipment was unknown."""
    lists = list(per_logger.values())
    if not lists:
        return []
    common = list(lists[0])
    for other in lists[1:]:
        common = intersect(common, other)
    return common


def all_gaps(
    series: Mapping[str, Sequence[float]],
    max_gap_s: Mapping[str, float],
    start: float | None,
    end: float | None,
) -> tuple[list[Gap], list[Gap]]:
    """(per-logger gaps, shipment-level gaps) for several loggers' sorted device times."""
    per = {
        logger: logger_gaps(ts, max_gap_s[logger], start, end) for logger, ts in series.items()
    }
    by_logger = [Gap(a, b, logger) for logger in sorted(per) for a, b in per[logger]]
    return by_logger, [Gap(a, b) for a, b in shipment_gaps(per)]
