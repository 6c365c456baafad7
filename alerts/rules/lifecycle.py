"""Rule 10: turn conditions and existing alerts into transitions (open/update/escalate/resolve).

One alert per episode of a condition on a shipment, and at most one live alert per kind. An
episode is matched to the alert whose span overlaps it (within the clear time), so
re-evaluation after late data never duplicates an alert, and an alert a person resolved is not
reopened for the same episode unless it got worse. Episodes that come to light while a live
alert of the kind exists join it; a new alert opens only when none is live. Every visible change
(a new episode, an earlier start, a worse peak or severity, another logger) is announced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts.rules.conditions import PEAK_NAME, Condition
from alerts.rules.model import CURRENT_KINDS, MANUAL_KINDS, SEVERITY_RANK
from alerts.rules.timeutil import require_aware

RESOLVED = "resolved"
CLEARED_REASON = {
    "signal_lost": "data is flowing again",
    "hold_time_at_risk": "hold-time margin recovered or shipment delivered",
    "hold_time_exceeded": "no longer applies after re-evaluation",
}


@dataclass(frozen=True, slots=True)
class AlertView:
    """What the lifecycle needs to know about a stored alert."""

    id: str
    kind: str
    severity: str
    state: str
    condition_since: datetime
    opened_at: datetime
    retroactive: bool = False
    last_evidence_at: datetime | None = None
    severity_since: datetime | None = None
    escalated_at: datetime | None = None
    occurrences: int = 1
    details: Mapping[str, Any] = field(default_factory=dict)
    reopened_at: datetime | None = None

    @property
    def live(self) -> bool:
        return self.state != RESOLVED

    @property
    def attention_since(self) -> datetime:
        """Since when it has waited for a person: opened, severity raised or reopened."""
        since = self.severity_since or self.opened_at
        return max(since, self.reopened_at) if self.reopened_at else since


@dataclass(frozen=True, slots=True)
class Open:
    kind: str
    severity: str
    condition_since: datetime
    retroactive: bool
    last_evidence_at: datetime | None
    occurrences: int
    details: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Update:
    """`notify`: a visible change (announced: event, webhook, audit), listed in `changes` as
    [before, after]; else evidence and counts refreshed silently."""

    alert_id: str
    kind: str
    severity: str
    last_evidence_at: datetime | None
    occurrences: int
    details: Mapping[str, Any]
    notify: bool
    # An acknowledged alert got worse or has a new episode: it needs a person again (open,
    # unacknowledged, escalating).
    reopen: bool
    reason: str | None = None
    condition_since: datetime | None = None  # set when late data shows it began earlier
    retroactive: bool | None = None  # the alert's new flag (None: unchanged)
    changes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Escalate:
    alert_id: str
    kind: str


@dataclass(frozen=True, slots=True)
class Resolve:
    alert_id: str
    kind: str
    reason: str
    cleared_at: datetime
    duration_s: float


Transition = Open | Update | Escalate | Resolve


@dataclass(frozen=True, slots=True)
class Plan:
    transitions: tuple[Transition, ...]
    next_escalation_at: datetime | None


def reconcile(
    conditions: Mapping[str, Sequence[Condition]],
    alerts: Sequence[AlertView],
    now: datetime,
    *,
    clear_s: float,
    escalation_after_s: float,
) -> Plan:
    """Transitions that bring the stored alerts in line with the conditions found at `now`."""
    require_aware(now, "now")
    clear = timedelta(seconds=clear_s)
    out: list[Transition] = []
    after: dict[str, tuple[str, str, datetime | None, datetime | None]] = {}
    for kind, conds in conditions.items():
        mine = sorted((a for a in alerts if a.kind == kind), key=lambda a: a.condition_since)
        if kind in CURRENT_KINDS:
            out.extend(_current(kind, conds, mine, now, after))
        else:
            out.extend(_episodic(kind, conds, mine, now, clear, after))
    resolved = {t.alert_id for t in out if isinstance(t, Resolve)}
    for alert in alerts:
        if alert.live and alert.id not in after and alert.id not in resolved:
            after[alert.id] = (alert.state, alert.severity, alert.attention_since,
                               alert.escalated_at)
    out_escalations, next_at = _escalations(after, alerts, now, escalation_after_s)
    return Plan(tuple(out + out_escalations), next_at)


def _current(
    kind: str, conds: Sequence[Condition], mine: list[AlertView], now: datetime,
    after: dict[str, tuple[str, str, datetime | None, datetime | None]],
) -> list[Transition]:
    """Conditions judged on `now` alone: at most one, matched to the one live alert."""
    live = next((a for a in mine if a.live), None)
    if not conds:
        if live is None:
            return []
        reason = CLEARED_REASON.get(kind, "condition cleared")
        return [Resolve(live.id, kind, reason, now, _duration(live, now))]
    c = conds[0]
    if live is not None:
        return _follow(c, live, now, after)
    if any(a.condition_since == c.start and SEVERITY_RANK[a.severity] >= SEVERITY_RANK[c.severity]
           for a in mine):
        return []  # resolved by a person while it held: not reopened for the same episode
    return [_open(kind, [c], now, after, retroactive=c.retroactive)]


def _episodic(
    kind: str, conds: Sequence[Condition], mine: list[AlertView], now: datetime,
    clear: timedelta, after: dict[str, tuple[str, str, datetime | None, datetime | None]],
) -> list[Transition]:
    """Episodes of device-time conditions against the kind's alerts.

    Each episode belongs to the resolved alert that covered it, or else to the kind's live
    alert (an episode revealed by late data joins it, as the database keeps one live alert per
    kind); only without a live alert does an episode open a new one.
    """
    live = next((a for a in mine if a.live), None)
    done = [a for a in mine if not a.live]
    for_live: list[Condition] = []
    for_new: list[Condition] = []
    for c in sorted(conds, key=lambda c: c.start):
        if live is not None and _overlaps(c, live, clear):
            for_live.append(c)
            continue
        covered = [a for a in done if _overlaps(c, a, clear)]
        if covered:
            best = min(covered, key=lambda a: abs((a.condition_since - c.start).total_seconds()))
            if SEVERITY_RANK[c.severity] <= SEVERITY_RANK[best.severity] or c.cleared:
                continue  # its alert was resolved (by a person, or cleared) and it is no worse
        (for_live if live is not None else for_new).append(c)
    out: list[Transition] = []
    if live is not None:
        if for_live:
            covered_until = live.last_evidence_at or live.condition_since
            fresh = [c for c in for_live
                     if c.start > covered_until or (c.end is not None and c.end < live.condition_since)]
            out.extend(_follow(_aggregate(kind, for_live), live, now, after, fresh))
        else:
            out.append(Resolve(live.id, kind, "not confirmed on re-evaluation", now,
                               _duration(live, now)))
    if for_new and (live is None or any(isinstance(t, Resolve) for t in out)):
        retro = any(c.retroactive or c.cleared for c in for_new)
        out.append(_open(kind, for_new, now, after, retroactive=retro))
    return out


def _open(
    kind: str, conds: list[Condition], now: datetime,
    after: dict[str, tuple[str, str, datetime | None, datetime | None]], *, retroactive: bool,
) -> Open:
    c = _aggregate(kind, conds)
    after[f"new:{kind}"] = ("open", c.severity, now, None)
    return Open(kind, c.severity, c.start, retroactive, c.last_evidence, c.count, dict(c.details))


def _aggregate(kind: str, conds: list[Condition]) -> Condition:
    """Several episodes as one: earliest start, latest evidence, worst severity and peak."""
    if len(conds) == 1:
        return conds[0]
    ends = [c.end for c in conds]
    details = {**conds[-1].details, "occurrences": sum(c.count for c in conds),
               "episodes": sum(int(c.details.get("episodes", 1)) for c in conds)}
    if any("loggers" in c.details for c in conds):
        details["loggers"] = sorted({lid for c in conds for lid in c.loggers})
    ranked = [c for c in conds if c.peak_rank is not None and PEAK_NAME.get(kind) in c.details]
    worst = max(ranked, key=lambda c: c.peak_rank or 0.0) if ranked else None
    if worst is not None:
        details[PEAK_NAME[kind]] = worst.details[PEAK_NAME[kind]]
    evidence = [c.last_evidence for c in conds if c.last_evidence is not None]
    return Condition(
        kind=kind, start=min(c.start for c in conds),
        severity=max((c.severity for c in conds), key=lambda v: SEVERITY_RANK[v]),
        end=None if any(e is None for e in ends) else max(e for e in ends if e is not None),
        cleared=all(c.cleared for c in conds), retroactive=any(c.retroactive for c in conds),
        last_evidence=max(evidence, default=None), count=sum(c.count for c in conds),
        loggers=tuple(sorted({lid for c in conds for lid in c.loggers})), details=details,
        peak_rank=None if worst is None else worst.peak_rank,
    )


def _overlaps(c: Condition, a: AlertView, clear: timedelta) -> bool:
    if c.end is not None and not a.condition_since < c.end + clear:
        return False
    if a.live:
        return True
    a_end = a.last_evidence_at or a.condition_since
    return c.start < a_end + clear


# The peaks whose change is announced: temperature (every breach with its peak) and shock
# (discrete events); a route deviation's distance and a battery's level drift with every
# reading and are refreshed silently.
_ANNOUNCED_PEAKS = {k: v for k, v in PEAK_NAME.items() if v in ("peak_c", "max_shock_g")}


def _follow(
    c: Condition, a: AlertView, now: datetime,
    after: dict[str, tuple[str, str, datetime | None, datetime | None]],
    fresh: Sequence[Condition] = (),
) -> list[Transition]:
    """The live alert `a` against its condition `c` (episodes matched to it, aggregated);
    `fresh`: the episodes among them the alert did not cover yet."""
    if c.cleared and c.kind not in MANUAL_KINDS and not a.retroactive:
        assert c.end is not None
        duration = max(0.0, (c.end - a.condition_since).total_seconds())
        reason = CLEARED_REASON.get(c.kind, "condition cleared")
        return [Resolve(a.id, c.kind, reason, c.end, duration)]
    worse = SEVERITY_RANK[c.severity] > SEVERITY_RANK[a.severity]
    severity = c.severity if worse else a.severity
    another = int(c.details.get("episodes", 1)) > int(a.details.get("episodes", 1))
    since = c.start if c.start < a.condition_since else None  # late data: it began earlier
    changes, reasons = _changes(c, a, severity if worse else None, since)
    if another:
        reasons.insert(0, "another episode of the condition found")
        changes["episodes"] = [int(a.details.get("episodes", 1)), int(c.details["episodes"])]
    # A person saw it; something new happened since: it needs a person again.
    reopen = a.state == "acknowledged" and (worse or another)
    retroactive = None
    if reopen and another:
        # Live when any new episode is live (found as it happened, not after the fact).
        retroactive = all(x.retroactive or x.cleared for x in fresh) if fresh else a.retroactive
        if retroactive != a.retroactive:
            changes["retroactive"] = [a.retroactive, retroactive]
    state, attention, escalated = a.state, a.attention_since, a.escalated_at
    if worse:
        attention, escalated = now, None
        state = "open" if a.state == "escalated" else state
    if reopen:
        state, attention, escalated = "open", now, None
    after[a.id] = (state, severity, attention, escalated)
    details = dict(c.details)
    count = max(c.count, a.occurrences)
    if changes:
        return [Update(a.id, c.kind, severity, c.last_evidence, count, details, notify=True,
                       reopen=reopen, reason="; ".join(reasons), condition_since=since,
                       retroactive=retroactive, changes=changes)]
    # A recurrence inside the episode (a value flapping at a limit) is counted, not announced.
    if c.count > a.occurrences or c.last_evidence != a.last_evidence_at or details != dict(
            a.details):
        return [Update(a.id, c.kind, severity, c.last_evidence, count, details, notify=False,
                       reopen=False)]
    return []


def _changes(
    c: Condition, a: AlertView, raised: str | None, since: datetime | None,
) -> tuple[dict[str, Any], list[str]]:
    """Rule 10: a change of severity, start, peak or loggers is announced ([before, after])."""
    changes: dict[str, Any] = {}
    reasons: list[str] = []
    if raised is not None:
        changes["severity"] = [a.severity, raised]
        reasons.append(f"severity raised to {raised}")
    if since is not None:
        changes["condition_since"] = [a.condition_since.isoformat(), since.isoformat()]
        reasons.append("began earlier (found in late data)")
    key = _ANNOUNCED_PEAKS.get(c.kind)
    if key is not None and c.details.get(key) is not None and c.details.get(key) != a.details.get(key):
        changes[key] = [a.details.get(key), c.details[key]]
        reasons.append(f"{key} now {c.details[key]:g}")
    if c.kind not in CURRENT_KINDS and "loggers" in a.details:
        joined = sorted(set(c.loggers) - set(a.details["loggers"]))
        if joined:
            changes["loggers"] = [list(a.details["loggers"]), sorted(c.loggers)]
            reasons.append(f"also on {', '.join(joined)}")
    return changes, reasons


def _escalations(
    after: Mapping[str, tuple[str, str, datetime | None, datetime | None]],
    alerts: Sequence[AlertView], now: datetime, escalation_after_s: float,
) -> tuple[list[Transition], datetime | None]:
    """Unacknowledged critical alerts escalate once after the configured time."""
    kinds = {a.id: a.kind for a in alerts}
    out: list[Transition] = []
    pending: list[datetime] = []
    wait = timedelta(seconds=escalation_after_s)
    for alert_id, (state, severity, since, escalated) in after.items():
        if state != "open" or severity != "critical" or escalated is not None:
            continue
        due = (since or now) + wait
        if due <= now and alert_id in kinds:
            out.append(Escalate(alert_id, kinds[alert_id]))
        else:
            pending.append(due)
    return out, min(pending, default=None)


def _duration(a: AlertView, now: datetime) -> float:
    return max(0.0, (now - a.condition_since).total_seconds())
