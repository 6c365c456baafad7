"""Write alert transitions: the alert row, its event (webhook source), and the audit entry."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from alerts.messages import alert_message
from alerts.rules import (
    TEMPERATURE_CRITICAL,
    TEMPERATURE_HIGH,
    TEMPERATURE_LOW,
    Escalate,
    Open,
    Plan,
    ProductProfile,
    Resolve,
    Update,
)
from app.core import audit
from app.core.models import Alert, AlertEvent
from app.core.security import SYSTEM, Principal

TEMPERATURE_KINDS = (TEMPERATURE_HIGH, TEMPERATURE_LOW, TEMPERATURE_CRITICAL)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    action: str
    entity_id: uuid.UUID
    before: dict[str, Any] | None
    after: dict[str, Any]
    reason: str | None


def snapshot(a: Alert) -> dict[str, Any]:
    """The audited view of an alert."""
    return {
        "shipment_id": str(a.shipment_id), "kind": a.kind, "severity": a.severity,
        "state": a.state, "condition_since": a.condition_since.isoformat(),
        "retroactive": a.retroactive, "occurrences": a.occurrences, "peak_c": a.peak_c,
        "acknowledged_by": a.acknowledged_by, "resolved_by": a.resolved_by,
        "resolution": a.resolution,
    }


def _jsonable(details: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in details.items()}


def new_event(alert: Alert, type_: str, now: datetime, *, actor: str = SYSTEM.actor,
              comment: str | None = None, reason: str | None = None,
              changes: Mapping[str, Any] | None = None) -> AlertEvent:
    data: dict[str, Any] = {"severity": alert.severity, "state": alert.state}
    if reason:
        data["reason"] = reason
    if changes:
        data["changes"] = _jsonable(changes)
    return AlertEvent(alert_id=alert.id, type=type_, at=now, actor=actor, comment=comment,
                      data=data)


def _peak_c(kind: str, details: Mapping[str, Any]) -> float | None:
    value = details.get("peak_c") if kind in TEMPERATURE_KINDS else None
    return float(value) if value is not None else None


async def apply_plan(
    session: AsyncSession,
    shipment_id: uuid.UUID,
    plan: Plan,
    alerts: dict[str, Alert],
    now: datetime,
    product: ProductProfile | None,
) -> tuple[list[AlertEvent], list[AuditEntry]]:
    """Carry out the plan on the ORM rows (the unit of work flushes them). `alerts` gains new
    rows; new alerts carry their id already, so events need no flush."""
    events: list[AlertEvent] = []
    audits: list[AuditEntry] = []
    for t in plan.transitions:
        if isinstance(t, Open):
            details = _jsonable(t.details)
            alert = Alert(
                id=uuid.uuid4(), shipment_id=shipment_id, kind=t.kind, severity=t.severity,
                state="open", opened_at=now, condition_since=t.condition_since,
                retroactive=t.retroactive, details=details, last_evidence_at=t.last_evidence_at,
                severity_since=now, occurrences=t.occurrences, peak_c=_peak_c(t.kind, details),
                message=alert_message(t.kind, t.condition_since, details, product),
            )
            session.add(alert)
            alerts[str(alert.id)] = alert
            before = None
            change: str | None = "opened"
            reason = "retroactive: found in late data" if t.retroactive else None
        else:
            alert = alerts[t.alert_id]
            before = snapshot(alert)
            change, reason = _change(alert, t, now, product)
        if change is None:
            continue
        type_: str = change
        event = new_event(alert, type_, now, reason=reason,
                          changes=t.changes if isinstance(t, Update) else None)
        session.add(event)
        events.append(event)
        audits.append(AuditEntry(f"alert.{type_}", alert.id, before, snapshot(alert), reason))
    return events, audits


def _change(
    alert: Alert, t: Update | Escalate | Resolve, now: datetime, product: ProductProfile | None,
) -> tuple[str | None, str | None]:
    if isinstance(t, Update):
        if t.severity != alert.severity:
            alert.severity, alert.severity_since, alert.escalated_at = t.severity, now, None
            if alert.state == "escalated":
                alert.state = "open"
        if t.reopen:  # it needs a person again: open, unacknowledged, escalating afresh
            alert.state, alert.reopened_at, alert.escalated_at = "open", now, None
            alert.acknowledged_at = alert.acknowledged_by = alert.ack_comment = None
        if t.retroactive is not None:
            alert.retroactive = t.retroactive
        alert.last_evidence_at = t.last_evidence_at
        alert.occurrences = t.occurrences
        if t.condition_since is not None:
            alert.condition_since = t.condition_since
        alert.details = _jsonable(t.details)
        alert.peak_c = _peak_c(alert.kind, alert.details)
        if t.notify:
            alert.message = alert_message(alert.kind, alert.condition_since, alert.details, product)
            return "updated", t.reason
        return None, None
    if isinstance(t, Escalate):
        alert.state, alert.escalated_at = "escalated", now
        return "escalated", "unacknowledged critical alert"
    alert.state, alert.resolved_at, alert.resolved_by = "resolved", now, SYSTEM.actor
    alert.resolution = t.reason
    alert.details = {**(alert.details or {}), "cleared_at": t.cleared_at.isoformat(),
                     "duration_s": t.duration_s}
    return "resolved", t.reason


async def write_audit(
    session: AsyncSession, entries: Sequence[AuditEntry], principal: Principal = SYSTEM
) -> None:
    """Audit records last in the transaction: the chain's lock is then held only briefly."""
    for e in entries:
        await audit.record(session, principal, action=e.action, entity_type="alert",
                           entity_id=e.entity_id, before=e.before, after=e.after, reason=e.reason)
