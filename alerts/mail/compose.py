"""The notification mail (pure, standard library only): subject, text and HTML parts from a `Notice`."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from alerts.messages import KIND_LABELS

# The events a person is mailed about (CONTRACT.md, "People"), and how a mail names them.
EVENTS = {"opened": "Alert opened", "escalated": "Alert escalated (unacknowledged)",
          "severity_raised": "Severity raised"}


@dataclass(frozen=True, slots=True)
class Notice:
    """Everything one notification says, captured when the event is written."""

    event: str  # a key of EVENTS
    shipment_id: str
    kind: str
    severity: str
    previous_severity: str | None  # for a severity raise
    reference: str
    message: str | None  # the alert's one-line message
    condition_since: datetime  # device time
    retroactive: bool
    peak_c: float | None = None
    temp_min_c: float | None = None
    temp_max_c: float | None = None
    critical_min_c: float | None = None
    critical_max_c: float | None = None
    hold_deadline: datetime | None = None
    expected_arrival: datetime | None = None
    margin_h: float | None = None
    budget_left_s: float | None = None
    projected_breach_at: datetime | None = None

    def __post_init__(self) -> None:
        for name in _TIMES:
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} is a naive datetime")
        if self.event not in EVENTS:
            raise ValueError(f"not a notified event: {self.event}")


_TIMES = ("condition_since", "hold_deadline", "expected_arrival", "projected_breach_at")


def notice_to_json(n: Notice) -> dict[str, Any]:
    """The stored form (mail_deliveries.notice): times as RFC 3339."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(n).items()}


def notice_from_json(data: Mapping[str, Any]) -> Notice:
    names = {f.name for f in fields(Notice)}
    values: dict[str, Any] = {k: (datetime.fromisoformat(v) if k in _TIMES and v is not None else v)
              for k, v in data.items() if k in names}
    return Notice(**values)


def shipment_link(base_url: str, shipment_id: str) -> str:
    """The shipment's page on the dashboard (the page routes on the fragment)."""
    return f"{base_url.rstrip('/')}/#/shipments/{shipment_id}"


def _t(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    minutes = max(0, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _c(value: float) -> str:
    return f"{value:g} °C"


def subject(n: Notice) -> str:
    """Severity, kind and shipment reference (CONTRACT.md), then what happened."""
    return (f"[{n.severity.upper()}] {n.reference}: {KIND_LABELS.get(n.kind, n.kind)} "
            f"({n.kind}): {EVENTS[n.event].split(' (')[0].lower()}")


def facts(n: Notice) -> list[tuple[str, str]]:
    """The body's lines as (label, value), in reading order; unknown values are left out."""
    label = KIND_LABELS.get(n.kind, n.kind)
    event = EVENTS[n.event]
    if n.event == "severity_raised" and n.previous_severity:
        event += f" from {n.previous_severity} to {n.severity}"
    rows = [("Event", event), ("Shipment", n.reference), ("Alert", f"{label} ({n.kind})"),
            ("Severity", n.severity), ("What", n.message or label)]
    since = f"{_t(n.condition_since)} (device time)"
    if n.retroactive:
        since += ", found in late data"
    rows.append(("Since", since))
    values = []
    if n.peak_c is not None:
        values.append(f"peak {_c(n.peak_c)}")
    if n.temp_min_c is not None and n.temp_max_c is not None:
        values.append(f"range {n.temp_min_c:g} to {n.temp_max_c:g} °C")
    limits = [f"{name} {_c(v)}" for name, v in (("below", n.critical_min_c),
                                                  ("above", n.critical_max_c)) if v is not None]
    if limits:
        values.append("critical " + " / ".join(limits))
    if values:
        rows.append(("Values", "; ".join(values)))
    left = []
    if n.margin_h is not None:
        margin = f"hold-time margin {n.margin_h:.1f} h"
        if n.hold_deadline is not None:
            margin += f" (deadline {_t(n.hold_deadline)}"
            if n.expected_arrival is not None:
                margin += f", expected arrival {_t(n.expected_arrival)}"
            margin += ")"
        left.append(margin)
    elif n.hold_deadline is not None:
        left.append(f"hold deadline {_t(n.hold_deadline)}")
    if n.budget_left_s is not None:
        left.append(f"stability budget left {_duration(n.budget_left_s)}")
    if n.projected_breach_at is not None:
        left.append(f"projected breach {_t(n.projected_breach_at)}")
    if left:
        rows.append(("Time left", "; ".join(left)))
    return rows


def text_body(n: Notice, link: str) -> str:
    rows = facts(n)
    width = max(len(k) for k, _ in rows) + 1
    lines = [f"{k + ':':<{width}} {v}" for k, v in rows]
    return "\n".join([*lines, "", f"Open the shipment: {link}", ""])


def html_body(n: Notice, link: str) -> str:
    e = html.escape
    rows = "".join(
        f'<tr><th align="left" valign="top">{e(k)}</th><td>{e(v)}</td></tr>' for k, v in facts(n)
    )
    return (
        "<!DOCTYPE html><html><body>"
        f"<p><strong>{e(subject(n))}</strong></p>"
        f'<table cellpadding="4">{rows}</table>'
        f'<p><a href="{e(link, quote=True)}">Open shipment {e(n.reference)}</a></p>'
        "</body></html>\n"
    )


def build(
    n: Notice, *, sender: str, to: Sequence[str], message_id: str, date: datetime, base_url: str
) -> EmailMessage:
    """The mail: a text part and an HTML alternative; the same bytes for the same inputs, so a
    retry resends the same message (same Message-ID: the recipient's side can drop a repeat)."""
    if date.tzinfo is None:
        raise ValueError("date is a naive datetime")
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject(n)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    # Automated: no out-of-office replies (RFC 3834).
    msg["Auto-Submitted"] = "auto-generated"
    link = shipment_link(base_url, n.shipment_id)
    msg.set_content(text_body(n, link))
    msg.add_alternative(html_body(n, link), subtype="html")
    return msg
