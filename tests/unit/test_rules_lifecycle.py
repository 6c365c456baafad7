"""Rule 10: one alert per episode, updates instead of duplicates, resolve, reopen, escalate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from alerts.rules import AlertView, Condition, Escalate, Open, Plan, Resolve, Update, reconcile
from tests.unit.rules_support import at

NOW = at(60)


def cond(kind: str = "temperature_high", start: float = 0, end: float | None = None,
         cleared: bool = False, severity: str = "warning", count: int = 1,
         retroactive: bool = False) -> Condition:
    return Condition(kind=kind, start=at(start), severity=severity,
                     end=None if end is None else at(end), cleared=cleared,
                     retroactive=retroactive, last_evidence=at(end if end is not None else 50),
                     count=count, details={"occurrences": count})


def alert(kind: str = "temperature_high", since: float = 0, state: str = "open",
          severity: str = "warning", **over: object) -> AlertView:
    base = AlertView(id=f"a-{kind}-{since}-{state}", kind=kind, severity=severity, state=state,
                     condition_since=at(since), opened_at=at(since), last_evidence_at=at(50),
                     severity_since=at(since), details={"occurrences": 1})
    return replace(base, **over)  # type: ignore[arg-type]


def plan(conds: Sequence[Condition], alerts: Sequence[AlertView], now: datetime = NOW) -> Plan:
    kinds: dict[str, list[Condition]] = {a.kind: [] for a in alerts}
    for c in conds:
        kinds.setdefault(c.kind, []).append(c)
    return reconcile(kinds, alerts, now, clear_s=900, escalation_after_s=900)


def test_a_new_condition_opens_one_alert() -> None:
    (t,) = plan([cond()], []).transitions
    assert isinstance(t, Open) and t.condition_since == at(0) and not t.retroactive


def test_the_same_episode_only_refreshes_its_alert() -> None:
    assert plan([cond()], [alert()]).transitions == ()
    (t,) = plan([replace(cond(), last_evidence=at(55))], [alert()]).transitions
    assert isinstance(t, Update) and not t.notify


def test_recurrence_within_the_episode_is_counted_without_a_notification() -> None:
    (t,) = plan([cond(count=3)], [alert()]).transitions
    assert isinstance(t, Update) and not t.notify and t.occurrences == 3 and not t.reopen


def test_cleared_episode_resolves_with_its_duration() -> None:
    (t,) = plan([cond(end=40, cleared=True)], [alert(since=10)]).transitions
    assert isinstance(t, Resolve) and t.cleared_at == at(40) and t.duration_s == 1800


def test_ended_but_not_yet_clear_keeps_the_alert_open() -> None:
    assert all(not isinstance(t, Resolve)
               for t in plan([cond(end=40, cleared=False)], [alert()]).transitions)


def test_manual_kinds_do_not_resolve_themselves() -> None:
    transitions = plan([cond("shock", end=5, cleared=True)], [alert("shock")]).transitions
    assert not any(isinstance(t, Resolve) for t in transitions)


def test_retroactive_alerts_wait_for_a_person() -> None:
    found_late = cond(end=10, cleared=True)
    (t,) = plan([found_late], []).transitions
    assert isinstance(t, Open) and t.retroactive  # found only after it had ended
    transitions = plan([found_late], [alert(retroactive=True)]).transitions
    assert not any(isinstance(t, Resolve) for t in transitions)


def test_resolved_by_a_person_is_not_reopened_for_the_same_episode() -> None:
    resolved = alert(state="resolved")
    assert plan([cond()], [resolved]).transitions == ()
    (t,) = plan([cond(severity="critical")], [resolved]).transitions  # but worse is news
    assert isinstance(t, Open) and t.severity == "critical"


def test_a_later_episode_opens_a_new_alert() -> None:
    old = alert(state="resolved", last_evidence_at=at(10))
    (t,) = plan([cond(end=10, cleared=True), cond(start=40)], [old]).transitions
    assert isinstance(t, Open) and t.condition_since == at(40)


def test_a_separate_episode_seen_while_the_alert_is_live_joins_it_and_notifies() -> None:
    # One pass saw the first episode clear and a second begin (the alert could not resolve in
    # between): one live alert per kind, so the second joins it, and that is announced.
    (t,) = plan([cond(end=10, cleared=True), cond(start=40)], [alert()]).transitions
    assert isinstance(t, Update) and t.notify and t.details["episodes"] == 2


def test_several_past_episodes_found_at_once_open_one_alert() -> None:
    found = [cond(start=0, end=10, cleared=True), cond(start=30, end=35, cleared=True)]
    (t,) = plan(found, []).transitions
    assert isinstance(t, Open) and t.retroactive and t.condition_since == at(0)
    assert (t.occurrences, t.details["episodes"]) == (2, 2)
    opened = alert(retroactive=True, occurrences=2, last_evidence_at=at(35),
                   details=dict(t.details))
    assert plan([replace(c, last_evidence=at(35)) for c in found], [opened]).transitions == ()


def test_an_older_episode_revealed_by_late_data_extends_the_live_alert() -> None:
    live = alert(since=40, retroactive=True)
    older = cond(start=5, end=10, cleared=True)
    (t,) = plan([older, cond(start=40)], [live]).transitions
    assert isinstance(t, Update) and t.notify and t.condition_since == at(5)
    moved = replace(live, condition_since=at(5), occurrences=2, details=dict(t.details))
    again = plan([older, cond(start=40)], [moved]).transitions
    assert all(isinstance(x, Update) and not x.notify for x in again)  # stable: no re-notify


def test_worse_severity_reopens_an_acknowledged_alert() -> None:
    acked = alert("stability_budget", severity="info", state="acknowledged")
    (t,) = plan([cond("stability_budget", severity="warning")], [acked]).transitions
    assert isinstance(t, Update) and t.notify and t.reopen and t.severity == "warning"
    assert plan([cond("stability_budget", severity="info")], [
        alert("stability_budget", severity="warning")]).transitions == ()  # never downgraded


def test_live_alert_without_its_condition_resolves() -> None:
    (t,) = plan([], [alert("signal_lost", since=30)]).transitions
    assert isinstance(t, Resolve) and t.reason == "data is flowing again"
    assert t.duration_s == 1800
    (t,) = plan([], [alert()]).transitions
    assert isinstance(t, Resolve) and "re-evaluation" in t.reason


def test_current_kinds_follow_their_live_alert_whatever_the_since() -> None:
    assert plan([cond("signal_lost", start=30)], [alert("signal_lost", since=29)]).transitions == ()
    resolved = alert("signal_lost", since=30, state="resolved")
    assert plan([cond("signal_lost", start=30)], [resolved]).transitions == ()
    (t,) = plan([cond("signal_lost", start=45)], [resolved]).transitions
    assert isinstance(t, Open)


def test_unacknowledged_critical_alerts_escalate_once() -> None:
    critical = alert("temperature_critical", severity="critical", since=50)
    result = plan([cond("temperature_critical", start=50, severity="critical")], [critical])
    assert not any(isinstance(t, Escalate) for t in result.transitions)
    assert result.next_escalation_at == at(65)
    later = plan([cond("temperature_critical", start=50, severity="critical")], [critical],
                 now=at(65))
    assert any(isinstance(t, Escalate) for t in later.transitions)
    for state in ("acknowledged", "escalated"):
        done = replace(critical, state=state, escalated_at=at(65))
        assert not any(isinstance(t, Escalate) for t in plan(
            [cond("temperature_critical", start=50, severity="critical")], [done],
            now=at(90)).transitions)


def test_new_critical_alert_schedules_its_escalation() -> None:
    result = plan([cond("hold_time_exceeded", severity="critical")], [])
    assert result.next_escalation_at == NOW + timedelta(seconds=900)


def test_a_new_live_episode_after_an_acknowledged_one_needs_a_person_again() -> None:
    # A retroactive critical alert was acknowledged (not resolved); 40 min after it cleared, a
    # live critical excursion: the alert is open again, unacknowledged, no longer retroactive.
    old = cond("temperature_critical", start=0, end=5, cleared=True, severity="critical",
               retroactive=True)
    acked = alert("temperature_critical", severity="critical", state="acknowledged",
                  retroactive=True, last_evidence_at=at(5), opened_at=at(20),
                  severity_since=at(20))
    new = cond("temperature_critical", start=45, severity="critical")
    result = plan([old, new], [acked])
    (t,) = result.transitions
    assert isinstance(t, Update) and t.notify and t.reopen and t.retroactive is False
    assert t.reason == "another episode of the condition found"
    assert dict(t.changes) == {"episodes": [1, 2], "retroactive": [True, False]}
    assert result.next_escalation_at == NOW + timedelta(seconds=900)  # escalates from now
    reopened = replace(acked, state="open", retroactive=False, reopened_at=NOW,
                       occurrences=t.occurrences, details=dict(t.details),
                       last_evidence_at=t.last_evidence_at)
    later = plan([old, new], [reopened], now=NOW + timedelta(seconds=900))
    assert [type(x) for x in later.transitions] == [Escalate]


def test_an_older_episode_found_late_reopens_an_acknowledged_alert_as_retroactive() -> None:
    acked = alert(since=40, state="acknowledged")
    older = cond(start=5, end=10, cleared=True, retroactive=True)
    (t,) = plan([older, cond(start=40)], [acked]).transitions
    assert isinstance(t, Update) and t.reopen and t.retroactive is True
    assert t.condition_since == at(5)
    assert set(t.changes) == {"episodes", "condition_since", "retroactive"}


def test_a_new_episode_joins_an_open_retroactive_alert_without_reopening_it() -> None:
    waiting = alert(retroactive=True, last_evidence_at=at(10))
    (t,) = plan([cond(end=10, cleared=True, retroactive=True), cond(start=40)], [waiting]).transitions
    assert isinstance(t, Update) and t.notify and not t.reopen and t.retroactive is None


def test_every_change_of_start_peak_or_loggers_is_announced() -> None:
    live = alert(since=20, details={"occurrences": 1, "peak_c": 9.0, "loggers": ["L1"]})
    same = replace(cond(start=20), loggers=("L1",), peak_rank=9.0,
                   details={"occurrences": 1, "peak_c": 9.0, "loggers": ["L1"]})
    assert plan([replace(same, last_evidence=at(50))], [live]).transitions == ()
    (t,) = plan([replace(same, start=at(12))], [live]).transitions
    assert isinstance(t, Update) and t.notify and not t.reopen
    assert (t.condition_since, dict(t.changes)) == (at(12), {
        "condition_since": [at(20).isoformat(), at(12).isoformat()]})
    hotter = replace(same, peak_rank=11.0, details={**same.details, "peak_c": 11.0})
    (t,) = plan([hotter], [live]).transitions
    assert isinstance(t, Update) and t.notify and dict(t.changes) == {"peak_c": [9.0, 11.0]}
    assert t.reason == "peak_c now 11"
    both = replace(same, loggers=("L1", "L2"), details={**same.details, "loggers": ["L1", "L2"]})
    (t,) = plan([both], [live]).transitions
    assert isinstance(t, Update) and t.notify and dict(t.changes) == {
        "loggers": [["L1"], ["L1", "L2"]]}
    assert t.reason == "also on L2"


def test_a_route_deviations_growing_distance_is_refreshed_silently() -> None:
    live = alert("route_deviation", details={"occurrences": 1, "max_deviation_km": 120.0})
    farther = replace(cond("route_deviation"), details={"occurrences": 1,
                                                        "max_deviation_km": 180.0})
    (t,) = plan([farther], [live]).transitions
    assert isinstance(t, Update) and not t.notify and t.details["max_deviation_km"] == 180.0


def test_hold_time_at_risk_raised_to_critical_is_announced_and_reopened() -> None:
    acked = alert("hold_time_at_risk", since=30, state="acknowledged")
    (t,) = plan([cond("hold_time_at_risk", start=30, severity="critical")], [acked]).transitions
    assert isinstance(t, Update) and t.notify and t.reopen and t.severity == "critical"
    assert dict(t.changes) == {"severity": ["warning", "critical"]}


def test_several_episodes_aggregate_the_worst_peak_in_the_direction_of_the_breach() -> None:
    first = replace(cond("temperature_critical", start=0, end=5, cleared=True, severity="critical"),
                    peak_rank=1.0, details={"occurrences": 1, "peak_c": -11.0})
    second = replace(cond("temperature_critical", start=40, end=45, cleared=True,
                          severity="critical"),
                     peak_rank=5.0, details={"occurrences": 1, "peak_c": -15.0})
    (t,) = plan([first, second], []).transitions
    assert isinstance(t, Open) and t.details["peak_c"] == -15.0
