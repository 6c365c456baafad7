"""The report's temperature chart, drawn with reportlab's own shapes (no plotting library).

Min/max envelope per bucket with the mean line, the product's limits (dashed), excursions shaded
red, data gaps shaded grey; the line breaks at empty buckets instead of bridging them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
from reportlab.graphics.shapes import Drawing, Line, Polygon, PolyLine, Rect, String
from reportlab.lib import colors

from app.dashboard import resample
from app.reports.data import RecordReading

MAX_BUCKETS = 600
LIMIT = colors.HexColor("#1f4e79")
EXCURSION = colors.Color(0.85, 0.1, 0.1, alpha=0.22)
GAP = colors.Color(0.5, 0.5, 0.5, alpha=0.3)
ENVELOPE = colors.Color(0.2, 0.45, 0.8, alpha=0.35)


def choose_every(span_s: float, min_interval_s: float) -> str:
    for every in resample.EVERY:
        step = resample.bucket_seconds(every)
        if step >= min_interval_s and span_s / step <= MAX_BUCKETS:
            return every
    return "1d"


def _us(value: datetime) -> int:
    return int(value.timestamp() * 1_000_000)


def draw(
    report: dict[str, Any], readings: list[RecordReading], width: float, height: float
) -> Drawing:
    d = Drawing(width, height)
    left, bottom, right, top = 42.0, 30.0, width - 8.0, height - 18.0
    start = report["shipment"]["packed_at"]
    end = report["shipment"]["received_at"] or report["report"]["generated_at"]
    if readings:
        end = max(end, readings[-1].ts)
    span_s = max((end - start).total_seconds(), 60.0)
    intervals = [lg["reporting_interval_s"] for lg in report["loggers"]] or [60]
    every = choose_every(span_s, float(max(intervals)))
    cols = resample.resample(
        np.array([_us(r.ts) for r in readings], dtype="int64"),
        np.array([r.temp_c for r in readings], dtype="float64"),
        every, start_us=_us(start), end_us=_us(end) + 1,
    )
    p = report["product"]
    values = [p["temp_min_c"], p["temp_max_c"]]
    finite = cols["min_c"][~np.isnan(cols["min_c"])]
    if finite.size:
        values += [float(finite.min()), float(np.nanmax(cols["max_c"]))]
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.1, 1.0)
    lo, hi = lo - pad, hi + pad
    t0, t1 = start.timestamp(), max(end.timestamp(), start.timestamp() + 60)

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * (right - left)

    def y(v: float) -> float:
        return bottom + (v - lo) / (hi - lo) * (top - bottom)

    d.add(Rect(left, bottom, right - left, top - bottom, fillColor=None,
               strokeColor=colors.grey, strokeWidth=0.5))
    for g in report["data_gaps"]["shipment"]:
        a, b = x(g["start"].timestamp()), x(g["end"].timestamp())
        d.add(Rect(a, bottom, max(b - a, 0.5), top - bottom, fillColor=GAP, strokeColor=None))
    for e in report["excursions"]:
        a = x(e["start"].timestamp())
        b = x((e["end"] or end).timestamp())
        d.add(Rect(a, bottom, max(b - a, 0.8), top - bottom, fillColor=EXCURSION,
                   strokeColor=None))
    for limit in (p["temp_min_c"], p["temp_max_c"]):
        d.add(Line(left, y(limit), right, y(limit), strokeColor=LIMIT, strokeWidth=0.8,
                   strokeDashArray=[4, 3]))
        d.add(String(right - 2, y(limit) + 2, f"{limit:g} C", fontSize=6, fillColor=LIMIT,
                     textAnchor="end"))
    step_s = resample.bucket_seconds(every)
    segment: list[tuple[float, float, float, float]] = []
    for ts_us, mn, mean, mx in zip(cols["ts_us"].tolist(), cols["min_c"].tolist(),
                                   cols["mean_c"].tolist(), cols["max_c"].tolist(), strict=True):
        if mn != mn:  # an empty bucket: end the segment, never bridge it
            _segment(d, segment, y)
            segment = []
            continue
        segment.append((x(ts_us / 1e6 + step_s / 2), mn, mean, mx))
    _segment(d, segment, y)
    _axes(d, left, bottom, right, top, lo, hi, t0, t1, y)
    d.add(String(left, height - 10, f"Temperature (C), {every} buckets: min-max envelope and mean; "
                 "red: excursions; grey: data gaps; dashed: limits", fontSize=7))
    return d


def _segment(d: Drawing, seg: list[tuple[float, float, float, float]], y: Any) -> None:
    if not seg:
        return
    if len(seg) == 1:
        px, mn, mean, mx = seg[0]
        d.add(Line(px, y(mn), px, y(mx), strokeColor=ENVELOPE, strokeWidth=2))
        d.add(Rect(px - 1, y(mean) - 1, 2, 2, fillColor=colors.black, strokeColor=None))
        return
    upper = [c for px, _, _, mx in seg for c in (px, y(mx))]
    lower = [c for px, mn, _, _ in reversed(seg) for c in (px, y(mn))]
    d.add(Polygon(upper + lower, fillColor=ENVELOPE, strokeColor=None))
    d.add(PolyLine([c for px, _, mean, _ in seg for c in (px, y(mean))],
                   strokeColor=colors.black, strokeWidth=0.7))


def _axes(d: Drawing, left: float, bottom: float, right: float, top: float, lo: float,
          hi: float, t0: float, t1: float, y: Any) -> None:
    for i in range(6):
        v = lo + (hi - lo) * i / 5
        d.add(String(left - 3, y(v) - 2, f"{v:.1f}", fontSize=6, textAnchor="end"))
    for i in range(5):
        t = t0 + (t1 - t0) * i / 4
        px = left + (right - left) * i / 4
        label = datetime.fromtimestamp(t, UTC).strftime("%d %b %H:%M")
        d.add(String(px, bottom - 10, label, fontSize=6, textAnchor="middle"))
