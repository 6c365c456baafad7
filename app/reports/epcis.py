"""GS1 EPCIS 2.0 JSON-LD export: custody events and the sensor record as ObjectEvents.

Custody events map to CBV 2.0 business steps and dispositions; readings are grouped per logger
and hour into `sensor_reporting` ObjectEvents whose sensorElementList holds one sensor element
per reading (sensorMetadata time/deviceID, sensorReport gs1:Temperature in CEL), as in the
standard's sensor-data examples. Identifiers are the API's own URLs (EPCIS 2.0 accepts any URI).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from app.reports.data import RecordReading, ReportData

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
MEDIA_TYPE = "application/ld+json"
_NAMESPACE = uuid.UUID("5b0f8d0e-3c57-4f0a-9a54-1d8f6c2f4e11")
# Custody event → (bizStep, disposition) in CBV 2.0 terms.
CUSTODY = {
    "packed": ("packing", "in_progress"),
    "departed": ("departing", "in_transit"),
    "customs_hold": ("holding", "unavailable"),
    "customs_released": ("transporting", "in_transit"),
    "delivered": ("arriving", "in_progress"),
    "received": ("receiving", "in_progress"),
    # Contingencies keep the disposition the shipment had (None): re-iced / LN2 recharged in
    # place, or sent on along another lane.
    "recharged": ("other", None),
    "rerouted": ("transporting", None),
}
RELEASE = {"released": "conformant", "rejected": "non_conformant"}


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event_id(*parts: object) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, '|'.join(str(p) for p in parts))}"


def _object_event(
    epc: str, at: datetime, biz_step: str, disposition: str | None, key: tuple[object, ...],
    **extra: Any,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventID": _event_id(*key),
        "eventTime": _time(at),
        "eventTimeZoneOffset": "+00:00",
        "epcList": [epc],
        "action": "OBSERVE",
        "bizStep": biz_step,
    }
    if disposition is not None:
        event["disposition"] = disposition
    event.update(extra)
    return event


def _sensor_element(row: RecordReading, device: str) -> dict[str, Any]:
    reports: list[dict[str, Any]] = [{"type": "gs1:Temperature", "value": row.temp_c, "uom": "CEL"}]
    if row.humidity_pct is not None:
        reports.append({"type": "gs1:RelativeHumidity", "value": row.humidity_pct, "uom": "P1"})
    return {
        "sensorMetadata": {"time": _time(row.ts), "deviceID": device},
        "sensorReport": reports,
    }


def _sensor_events(d: ReportData, epc: str, base: str) -> list[dict[str, Any]]:
    groups: dict[tuple[str, datetime], list[RecordReading]] = {}
    for row in d.readings:
        hour = row.ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        groups.setdefault((row.logger_id, hour), []).append(row)
    events = []
    for (logger_id, hour), rows in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        device = f"{base}loggers/{quote(logger_id, safe='')}"
        last = rows[-1]
        extra: dict[str, Any] = {}
        located = [r for r in rows if r.lat is not None and r.lon is not None]
        if located:
            extra["readPoint"] = {"id": f"geo:{located[-1].lat},{located[-1].lon}"}
        extra["sensorElementList"] = [_sensor_element(r, device) for r in rows]
        events.append(_object_event(
            epc, last.ts, "sensor_reporting", None, (d.shipment["id"], logger_id, hour),
            **extra,
        ))
    return events


def document(d: ReportData, base: str) -> dict[str, Any]:
    """The EPCIS document; `base` is the API root URL ending in '/' (e.g. http://host/api/v1/)."""
    s = d.shipment
    epc = f"{base}shipments/{s['id']}"
    events = [_object_event(epc, s["packed_at"], *CUSTODY["packed"], (s["id"], "packed"))]
    chain = list(d.events)
    if s["departed_at"] is not None and not any(e["type"] == "departed" for e in chain):
        # Departed as registered (no event row): the chain still departs.
        chain.insert(0, {"type": "departed", "at": s["departed_at"], "id": "departed"})
        chain.sort(key=lambda e: e["at"])
    current = CUSTODY["packed"][1]
    for ev in chain:
        step, disposition = CUSTODY[ev["type"]]
        current = disposition or current
        events.append(_object_event(epc, ev["at"], step, current, (s["id"], ev["id"])))
    events.extend(_sensor_events(d, epc, base))
    if s["release_decision"] is not None and s["released_at"] is not None:
        events.append(_object_event(
            epc, s["released_at"], "inspecting", RELEASE[s["release_decision"]],
            (s["id"], "release"),
        ))
    events.sort(key=lambda e: e["eventTime"])
    return {
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _time(d.generated_at),
        "epcisBody": {"eventList": events},
    }
