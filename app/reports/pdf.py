"""The release report as PDF (reportlab). One section per page, as designed:

1 Summary (identity, lane, packaging and hold time, statistics, verdict, release decision),
2 Temperature chart, 3 Custody chain, 4 Excursions and alerts, 5 Data gaps, then the complete
Reading record on as many pages as it needs. Each page is headed by its section's title.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from app.reports import chart
from app.reports.content import WITHIN
from app.reports.data import RecordReading

SECTIONS = ("Summary", "Temperature chart", "Custody chain", "Excursions and alerts",
            "Data gaps", "Reading record")
MARGIN = 40.0
ROWS_PER_BLOCK, BLOCKS = 62, 3
_STYLES = getSampleStyleSheet()
H1 = _STYLES["Heading1"]
H2 = _STYLES["Heading2"]
BODY = ParagraphStyle("body", parent=_STYLES["BodyText"], fontSize=8.5, leading=11)
GOOD = ParagraphStyle("good", parent=H2, textColor=colors.HexColor("#1b7a2f"))
BAD = ParagraphStyle("bad", parent=H2, textColor=colors.HexColor("#b00020"))
GRID = TableStyle([
    ("FONT", (0, 0), (-1, -1), "Helvetica", 7.5),
    ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 7.5),
    ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
])
KEYVALUE = TableStyle([
    ("FONT", (0, 0), (-1, -1), "Helvetica", 8),
    ("FONT", (0, 0), (0, -1), "Helvetica-Bold", 8),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.lightgrey),
])


def fmt(value: Any) -> str:
    """A value as Paragraph text: markup characters in names and notes (`<`, `&`) printed as such."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, float):
        return f"{value:.2f}"
    return escape(str(value).replace("\u2212", "-"))


class Section(Flowable):
    """Zero-size marker: sets the title printed at the top of this and following pages."""

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        return 0, 0

    def draw(self) -> None:
        self.canv._coldchain_section = self.title  # type: ignore[attr-defined]


class ReadingPage(Flowable):
    """One page of the reading record, drawn straight on the canvas (fast for long records)."""

    def __init__(self, rows: list[RecordReading], first_index: int) -> None:
        super().__init__()
        self.rows, self.first_index = rows, first_index

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        self.width = avail_width
        return avail_width, (ROWS_PER_BLOCK + 1) * 11

    def draw(self) -> None:
        c = self.canv
        block_w = self.width / BLOCKS
        top = (ROWS_PER_BLOCK + 1) * 11 - 9
        for b in range(BLOCKS):
            if b * ROWS_PER_BLOCK >= len(self.rows):
                break
            x0 = b * block_w
            c.setFont("Helvetica-Bold", 6.5)
            for dx, label in ((0, "#"), (22, "time (UTC)"), (100, "logger")):
                c.drawString(x0 + dx, top, label)
            c.drawRightString(x0 + block_w - 8, top, "temp C")
            c.setFont("Helvetica", 6.5)
            for i, row in enumerate(self.rows[b * ROWS_PER_BLOCK:(b + 1) * ROWS_PER_BLOCK]):
                yy = top - (i + 1) * 11
                n = self.first_index + b * ROWS_PER_BLOCK + i + 1
                c.drawString(x0, yy, str(n))
                c.drawString(x0 + 22, yy, row.ts.astimezone(UTC).strftime("%m-%d %H:%M:%S"))
                c.drawString(x0 + 100, yy, str(row.logger_id)[:14])
                c.drawRightString(x0 + block_w - 8, yy, f"{row.temp_c:.2f}")


def _kv(pairs: list[tuple[str, Any]]) -> Table:
    table = Table([[k, Paragraph(fmt(v), BODY)] for k, v in pairs], colWidths=[150, 365])
    table.setStyle(KEYVALUE)
    return table


def _grid(header: list[str], rows: list[list[Any]], widths: list[float]) -> Table:
    data = [header] + [[Paragraph(fmt(v), BODY) for v in row] for row in rows]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(GRID)
    return table


def _summary(r: dict[str, Any]) -> list[Flowable]:
    s, p, pk, lane, st = r["shipment"], r["product"], r["packaging"], r["lane"], r["statistics"]
    v, rel = r["verdict"], r["release"]
    pct = st["stability_budget_used_pct"]
    flow: list[Flowable] = [
        Paragraph(f"Release report - {fmt(s['reference'])}", H1),
        Paragraph(f"Verdict: {v['line']}", GOOD if v["line"] == WITHIN else BAD),
    ]
    flow += [Paragraph(f"- {reason}", BODY) for reason in v["reasons"]]
    flow += [Spacer(1, 6), _kv([
        ("Shipment", f"{s['reference']} ({s['id']})"), ("Status", s["status"]),
        ("Product", f"{p['name']}: {p['temp_min_c']:g} to {p['temp_max_c']:g} C"),
        ("Lane", f"{lane['name']}: {lane['origin']['name']} -> {lane['destination']['name']}"),
        ("Validated transit", f"expected {lane['expected_transit_h']:g} h, "
                              f"max {lane['max_transit_h']:g} h; actual {fmt(lane['transit_h'])} h"),
        ("Packaging", f"{pk['name']} (qualified hold {pk['qualified_hold_h']:g} h)"),
        ("Packed / departed", f"{fmt(s['packed_at'])} / {fmt(s['departed_at'])}"),
        ("Delivered / received", f"{fmt(s['delivered_at'])} / {fmt(s['received_at'])}"),
        ("Hold deadline", pk["hold_deadline"]),
        ("Recharged (hold clock restarted)",
         ", ".join(fmt(t) for t in pk.get("recharged_at", [])) or "never"),
        ("Hold time ran out", ", ".join(fmt(t) for t in pk.get("hold_ran_out_at", [])) or "no"),
        ("Rerouted", "; ".join(f"{fmt(x['at'])} onto {x['name']}" for x in lane.get("reroutes", []))
         or "no"),
        ("Margin at arrival (h)", pk["margin_at_arrival_h"]),
        ("Loggers", ", ".join(lg["logger_id"] for lg in r["loggers"])),
    ]), Paragraph("Statistics", H2), _kv([
        ("Readings", st["reading_count"]), ("Min / max (C)", f"{fmt(st['min_c'])} / "
                                                             f"{fmt(st['max_c'])}"),
        ("Mean (C, time-weighted)", st["mean_c"]),
        ("MKT (C)", st["mkt_c"] if st["mkt_applicable"] else "not applicable (frozen profile)"),
        ("Time out of range", f"{st['time_out_of_range_s'] / 60:.1f} min"),
        ("Stability budget used", f"{st['stability_budget_used_s'] / 60:.1f} of "
                                  f"{st['stability_budget_s'] / 60:.1f} min"
                                  + (f" ({pct:.1f} %)" if pct is not None else "")),
        ("Time unknown (gaps)", f"{st['time_unknown_s'] / 60:.1f} min"),
        ("Reading record SHA-256", r["readings_csv_sha256"]),
    ]), Paragraph("Release decision", H2), _kv([
        ("Decision", rel["release_decision"] or "pending"), ("Reason", rel["release_reason"]),
        ("By / at", f"{fmt(rel['released_by'])} / {fmt(rel['released_at'])}"),
        *_signature_rows(rel["signature"]),
    ])]
    return flow


def _signature_rows(signature: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """The electronic signature's manifest (21 CFR 11.50), printed with the decision."""
    if signature is None:
        return [("Signature", "none")]
    return [("Signed by", f"{signature['signer_name']} ({signature['signer_email']})"),
            ("Signed at", fmt(signature["signed_at"])), ("Meaning", signature["meaning"])]


def _correction(e: dict[str, Any]) -> str:
    """How an event was corrected, for the note column (empty for an ordinary event)."""
    parts = []
    if e.get("late_entry"):
        parts.append("late entry")
    if e.get("voided_at"):
        parts.append(f"voided {fmt(e['voided_at'])}")
    elif e.get("original_at"):
        parts.append(f"moved from {fmt(e['original_at'])}")
    if e.get("corrected_by"):
        parts.append(f"by {e['corrected_by']}")
    if e.get("correction_reason"):
        parts.append(f"— {e['correction_reason']}")
    return " ".join(parts)


def _detail(e: dict[str, Any]) -> str:
    """What a contingency event changed, for the note column."""
    if e["type"] == "rerouted":
        return f"onto lane {e.get('lane_name') or e.get('lane_id')}"
    if e["type"] == "recharged":
        return "hold clock restarted"
    if e.get("override_reason"):
        unready = e.get("override_unready") or {}
        lapsed = [x["kind"] for x in unready.get("expired", [])]
        what = "; ".join(p for p in (
            f"missing {', '.join(unready.get('missing', []))}" if unready.get("missing") else "",
            f"expired {', '.join(lapsed)}" if lapsed else "") if p)
        return f"departed not ready ({what or 'override'}) — override: {e['override_reason']}"
    return ""


def _events(r: dict[str, Any]) -> list[Flowable]:
    rows = [[e["at"], e["type"], " ".join(p for p in (_detail(e), e["note"], _correction(e)) if p),
             e["recorded_by"], e["recorded_at"]] for e in r["custody_chain"]]
    if not rows:
        return [Paragraph("No custody events recorded.", BODY)]
    flow: list[Flowable] = [_grid(["at", "event", "note / correction", "recorded by",
                                   "recorded at"], rows, [95, 70, 170, 75, 95])]
    voided = [[e["at"], e["type"], _correction(e), e["recorded_by"], e["recorded_at"]]
              for e in r.get("voided_custody_events", [])]
    if voided:
        flow += [Paragraph("Voided events (recorded in error, kept for the record)", BODY),
                 _grid(["at", "event", "correction", "recorded by", "recorded at"], voided,
                       [95, 70, 170, 75, 95])]
    return flow


def _alerts(r: dict[str, Any]) -> list[Flowable]:
    flow: list[Flowable] = [Paragraph("Excursions", H2)]
    exc = [[e["kind"], e["logger_id"], e["start"], e["end"], f"{e['duration_s'] / 60:.1f} min",
            e["peak_c"], "yes" if e["retroactive"] else "no"] for e in r["excursions"]]
    flow.append(_grid(["kind", "logger", "start", "end", "duration", "peak C", "retro"], exc,
                      [75, 55, 95, 95, 55, 45, 35]) if exc
                else Paragraph("No excursions recorded.", BODY))
    flow.append(Paragraph("Alerts", H2))
    if not r["alerts"]:
        flow.append(Paragraph("No alerts raised.", BODY))
    for a in r["alerts"]:
        flow.append(Paragraph(
            f"<b>{a['kind']}</b> ({a['severity']}, {a['state']}) opened {fmt(a['opened_at'])}, "
            f"condition since {fmt(a['condition_since'])}; acknowledged by "
            f"{fmt(a['acknowledged_by'])}: {fmt(a['ack_comment'])}; resolved by "
            f"{fmt(a['resolved_by'])}: {fmt(a['resolution'])}", BODY))
        trail = [[e["at"], e["type"], e["actor"], e["comment"]] for e in a["events"]]
        if trail:
            flow.append(_grid(["at", "transition", "by", "comment"], trail, [95, 70, 90, 200]))
        flow.append(Spacer(1, 4))
    return flow


def _gaps(r: dict[str, Any]) -> list[Flowable]:
    flow: list[Flowable] = []
    for title, items in (("Whole shipment (no logger had a value)", r["data_gaps"]["shipment"]),
                         ("Per logger", r["data_gaps"]["per_logger"])):
        flow.append(Paragraph(title, H2))
        rows = [[g["logger_id"] or "all", g["start"], g["end"], f"{g['duration_s'] / 60:.1f} min"]
                for g in items]
        flow.append(_grid(["logger", "from", "to", "duration"], rows, [90, 140, 140, 80])
                    if rows else Paragraph("No data gaps.", BODY))
    return flow


def render(report: dict[str, Any], readings: list[RecordReading]) -> bytes:
    buffer = io.BytesIO()
    reference = str(report["shipment"]["reference"])

    def on_page(canvas: Any, doc: Any) -> None:
        section = getattr(canvas, "_coldchain_section", "")
        canvas.setFont("Helvetica-Bold", 9)
        canvas.drawString(MARGIN, A4[1] - 26, f"{section} - {reference}")
        canvas.setFont("Helvetica", 7)
        canvas.drawRightString(A4[0] - MARGIN, 20, f"page {doc.page} - generated "
                                                   f"{fmt(report['report']['generated_at'])}")

    doc = BaseDocTemplate(buffer, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN,
                          topMargin=MARGIN, bottomMargin=MARGIN,
                          title=f"Release report {reference}", author="coldchain")
    frame = Frame(MARGIN, MARGIN, A4[0] - 2 * MARGIN, A4[1] - 2 * MARGIN, id="body")
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame], onPageEnd=on_page)])
    width = A4[0] - 2 * MARGIN
    story: list[Flowable] = []
    bodies = [_summary(report), [chart.draw(report, readings, width, 420)], _events(report),
              _alerts(report), _gaps(report)]
    for title, body in zip(SECTIONS, bodies, strict=False):
        story += [Section(title), Paragraph(title, H1) if title != "Summary" else Spacer(1, 0),
                  *body, PageBreak()]
    story += [Section(SECTIONS[-1]), Paragraph(
        f"{SECTIONS[-1]}: {len(readings)} readings (device time, UTC). The complete record with "
        f"every field is the CSV export, SHA-256 {report['readings_csv_sha256']}.", BODY)]
    per_page = ROWS_PER_BLOCK * BLOCKS
    for i in range(0, len(readings), per_page):
        story.append(ReadingPage(readings[i:i + per_page], i))
        if i + per_page < len(readings):
            story += [PageBreak()]
    doc.build(story)
    return buffer.getvalue()
