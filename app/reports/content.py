"""The release report's content (one dict, rendered as JSON, PDF, CSV, EPCIS) and its verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.rules import run_outs
from app.core.signatures import signature_manifest
from app.dashboard.gaps import Gap, all_gaps
from app.reports import csv_export
from app.reports.data import RecordReading, ReportData
from app.reports.stats import compute

WITHIN = "within specification"
ASSESS = "excursions require assessment"
REPORT_VERSION = 1
TEMPERATURE_KINDS = ("temperature_high", "temperature_low", "temperature_critical")
# Alert kinds that, whatever their state now, put the product's quality in question.
QUALITY_KINDS = (*TEMPERATURE_KINDS, "stability_budget", "hold_time_exceeded", "shock",
                 "light_exposure")


def _gap_dict(g: Gap) -> dict[str, Any]:
    return {"start": datetime.fromtimestamp(g.start, UTC), "end": datetime.fromtimestamp(g.end, UTC),
            "duration_s": g.duration_s, "logger_id": g.logger_id}


def record_end(d: ReportData) -> datetime:
    return d.shipment["received_at"] or d.generated_at


def data_gaps(d: ReportData) -> tuple[list[Gap], list[Gap]]:
    series: dict[str, list[float]] = {lg["logger_id"]: [] for lg in d.loggers}
    for r in d.readings:
        series.setdefault(r.logger_id, []).append(r.ts.timestamp())
    max_gap = {lg["logger_id"]: lg["max_gap_s"] for lg in d.loggers}
    for lid in series:
        max_gap.setdefault(lid, 900.0)
    return all_gaps(series, max_gap, d.shipment["packed_at"].timestamp(),
                    record_end(d).timestamp())


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def hold_clock(d: ReportData) -> dict[str, Any]:
    """Rule 6 over the custody chain: the hold clock started at packing and restarted at every
    recharge; the deadline is the last charge's; `ran_out`: deadlines passed before the next
    recharge or the arrival (or, still going, before the report)."""
    s = d.shipment
    hold = timedelta(hours=d.packaging["qualified_hold_h"])
    recharges = [e["at"] for e in d.events if e["type"] == "recharged"]
    charges = sorted({s["packed_at"], *recharges})
    arrivals = [t for t in (s["delivered_at"], s["received_at"]) if t is not None]
    arrived = min(arrivals) if arrivals else None
    return {"started_at": charges[-1], "deadline": charges[-1] + hold, "recharges": recharges,
            "ran_out": list(run_outs(charges, hold, arrived, d.generated_at)), "arrived": arrived}


def reroutes(d: ReportData) -> list[dict[str, Any]]:
    """Each reroute with the lane it put the shipment on (in force from its time)."""
    out = []
    for e in d.events:
        if e["type"] != "rerouted":
            continue
        lane = d.reroute_lanes.get(e["lane_id"], {})
        out.append({"at": e["at"], "lane_id": e["lane_id"], "recorded_by": e["recorded_by"],
                    "note": e["note"], **{k: lane.get(k) for k in (
                        "name", "expected_transit_h", "max_transit_h", "corridor_km",
                        "destination_site_id")}})
    return out


def verdict(
    d: ReportData, stats: dict[str, Any], shipment_gaps: list[Gap], clock: dict[str, Any]
) -> dict[str, Any]:
    reasons: list[str] = []
    if stats["reading_count"] == 0:
        reasons.append("no temperature record")
    if stats["time_out_of_range_s"] > 0:
        pct = stats["stability_budget_used_pct"]
        budget = f" ({pct:.0f} % of the stability budget)" if pct is not None else ""
        reasons.append(f"{_minutes(stats['time_out_of_range_s'])} out of range{budget}")
    temp_excursions = [e for e in d.excursions if e["kind"] in TEMPERATURE_KINDS]
    if temp_excursions:
        reasons.append(f"{len(temp_excursions)} temperature excursion(s) recorded")
    kinds = sorted({a["kind"] for a in d.alerts if a["kind"] in QUALITY_KINDS})
    if kinds:
        reasons.append("alerts raised: " + ", ".join(kinds))
    arrived, hold_deadline = clock["arrived"], clock["deadline"]
    if arrived is not None and arrived > hold_deadline:
        reasons.append("delivered after the qualified hold time ended")
    for ran_out in clock["ran_out"]:
        if ran_out < hold_deadline:  # an earlier charge: the recharge came too late
            reasons.append(f"qualified hold time ran out at {ran_out.isoformat()} before the "
                           "shipper was recharged")
    unknown = sum(g.duration_s for g in shipment_gaps)
    if unknown > 0:
        reasons.append(f"temperature unknown for {_minutes(unknown)} (data gaps)")
    return {"line": ASSESS if reasons else WITHIN, "within_specification": not reasons,
            "reasons": reasons}


def build(d: ReportData, *, readings_sha256: str | None = None) -> dict[str, Any]:
    s, p, pk = d.shipment, d.product, d.packaging
    stats = compute(d.readings, d.spec, d.generated_at)
    per_logger, common = data_gaps(d)
    # Unknown time as the shipment saw it (no logger had a value), up to the end of the record.
    stats["time_unknown_s"] = sum(g.duration_s for g in common)
    clock = hold_clock(d)
    hold_deadline, arrived = clock["deadline"], clock["arrived"]
    transit_h = ((arrived - s["departed_at"]).total_seconds() / 3600
                 if arrived is not None and s["departed_at"] is not None else None)
    return {
        "report": {"title": "Release report", "version": REPORT_VERSION,
                   "generated_at": d.generated_at},
        "shipment": {k: s[k] for k in (
            "id", "reference", "status", "packed_at", "departed_at", "delivered_at",
            "received_at", "safety_margin_h", "max_gap_s")},
        "product": {k: p[k] for k in (
            "id", "name", "temp_min_c", "temp_max_c", "critical_min_c", "critical_max_c",
            "alarm_delay_s", "stability_budget_s", "shock_limit_g", "light_sensitive")},
        "packaging": {
            "id": pk["id"], "name": pk["name"], "temp_class": pk["temp_class"],
            "qualified_hold_h": pk["qualified_hold_h"], "hold_deadline": hold_deadline,
            "hold_started_at": clock["started_at"], "recharged_at": clock["recharges"],
            "hold_ran_out_at": clock["ran_out"],
            "margin_at_arrival_h": (hold_deadline - arrived).total_seconds() / 3600
            if arrived is not None else None,
        },
        "lane": {
            **{k: d.lane[k] for k in ("id", "name", "expected_transit_h", "max_transit_h",
                                      "corridor_km", "waypoints")},
            "origin": {k: d.origin[k] for k in ("id", "name", "country")},
            "destination": {k: d.destination[k] for k in ("id", "name", "country")},
            "transit_h": transit_h,
            "reroutes": reroutes(d),
        },
        "loggers": d.loggers,
        "custody_chain": [
            {**e, "lane_name": d.reroute_lanes.get(e["lane_id"], {}).get("name")}
            if e["lane_id"] is not None else e for e in d.events],
        "voided_custody_events": d.voided_events,
        "documents": d.documents,
        "readiness_overrides": [
            {"event_id": e["id"], "at": e["at"], "recorded_by": e["recorded_by"],
             "override_reason": e["override_reason"], **(e["override_unready"] or {})}
            for e in d.events if e.get("override_reason")],
        "statistics": stats,
        "excursions": d.excursions,
        "alerts": d.alerts,
        "data_gaps": {"shipment": [_gap_dict(g) for g in common],
                      "per_logger": [_gap_dict(g) for g in per_logger]},
        "release": {**{k: s[k] for k in ("release_decision", "release_reason", "released_by",
                                         "released_at")}, "signature": signature_manifest(s)},
        "verdict": verdict(d, stats, common, clock),
        "readings_csv_sha256": readings_sha256 or csv_export.sha256(d.readings),
        "readings": [reading_dict(r) for r in d.readings],
    }


def reading_dict(row: RecordReading) -> dict[str, Any]:
    out = row._asdict()
    if out["payload_sha256"] is not None:
        out["payload_sha256"] = bytes(out["payload_sha256"]).hex()
    return out
