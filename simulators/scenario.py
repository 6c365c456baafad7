"""Declarative scenarios (TOML under simulators/scenarios/): loading and validation."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulators.logger import LoggerSpec
from simulators.route import Route, Step, Waypoint
from simulators.thermal import SHIPPERS

SCENARIO_DIR = Path(__file__).parent / "scenarios"
ALERT_KINDS = frozenset({
    "temperature_high", "temperature_low", "temperature_critical", "stability_budget",
    "hold_time_at_risk", "hold_time_exceeded", "signal_lost", "dwell_exceeded",
    "route_deviation", "light_exposure", "shock", "battery_low",
})
INCIDENTS = ("lid_open", "shock", "silence")
CONTINGENCIES = ("recharged",)
ALERT_STATES = ("open", "escalated", "acknowledged", "resolved")
SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class Incident:
    kind: str
    at_s: float
    seconds: float
    g: float = 0.0


@dataclass(frozen=True, slots=True)
class Contingency:
    """A coordinator's action at `at_s`: `recharged` re-ices / recharges the shipper (the
    simulated coolant is full again and the event restarts the hold clock)."""

    type: str
    at_s: float
    note: str = ""


@dataclass(frozen=True, slots=True)
class Transition:
    """An alert state the scenario must reach, judged live at `at_s` (tests/db: the engine on
    an injected clock, readings received at their device time)."""

    at_s: float
    kind: str
    state: str
    severity: str


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    seed: int
    alerts: frozenset[str]
    exact_counts: bool
    product: dict[str, Any]
    packaging: dict[str, Any]
    shipper: str
    lane: dict[str, Any]
    origin: dict[str, Any]
    destination: dict[str, Any]
    waypoints: tuple[Waypoint, ...]
    route: Route
    loggers: tuple[LoggerSpec, ...]
    incidents: tuple[Incident, ...]
    safety_margin_h: float
    max_gap_s: int | None
    deliver: bool
    receive_after_h: float
    tail_s: float
    contingencies: tuple[Contingency, ...] = ()
    transitions: tuple[Transition, ...] = ()

    @property
    def recharges_s(self) -> tuple[float, ...]:
        return tuple(c.at_s for c in self.contingencies if c.type == "recharged")

    @property
    def duration_s(self) -> float:
        return self.route.duration_s

    @property
    def anchor_s(self) -> float:
        """The moment that is 'now' when the scenario is back-filled; after it, real time."""
        return self.duration_s - self.tail_s

    @property
    def qualified_hold_h(self) -> float:
        return float(self.packaging["qualified_hold_h"])


def _seconds(d: dict[str, Any], what: str) -> float:
    total = d.get("hours", 0) * 3600 + d.get("minutes", 0) * 60 + d.get("seconds", 0)
    if total <= 0:
        raise ValueError(f"{what}: give hours, minutes or seconds")
    return float(total)


def _at(d: dict[str, Any], duration_s: float, tail_s: float) -> float:
    if "at_h" in d:
        return float(d["at_h"]) * 3600
    if "at_tail_s" in d:
        return duration_s - tail_s + float(d["at_tail_s"])
    raise ValueError("an incident needs at_h or at_tail_s")


def parse(doc: dict[str, Any]) -> Scenario:
    name = doc["name"]
    alerts = frozenset(doc.get("alerts", []))
    if alerts - ALERT_KINDS:
        raise ValueError(f"{name}: unknown alert kinds {sorted(alerts - ALERT_KINDS)}")
    packaging = dict(doc["packaging"])
    shipper = packaging.pop("shipper")
    if shipper not in SHIPPERS:
        raise ValueError(f"{name}: unknown shipper {shipper!r}")
    lane = dict(doc["lane"])
    origin, destination = lane.pop("origin"), lane.pop("destination")
    waypoints = tuple(Waypoint(**w) for w in lane.pop("waypoints"))
    steps = tuple(
        Step(
            kind=s["kind"],
            seconds=_seconds(s, f"{name} step"),
            ambient=s.get("ambient", "room"),
            waypoint=s["waypoint"],
            coverage=s.get("coverage"),
            detour_km=s.get("detour_km", 0.0),
            release=s.get("release", True),
        )
        for s in doc["steps"]
    )
    route = Route.build(waypoints, steps)
    loggers = tuple(
        LoggerSpec(**{**lg, "channels": frozenset(lg.get("channels", ("position", "battery")))})
        for lg in doc["loggers"]
    )
    ship = doc.get("shipment", {})
    tail_s = float(doc.get("live", {}).get("tail_s", 0.0))
    if not 0 <= tail_s < route.duration_s:
        raise ValueError(f"{name}: tail_s must lie inside the timeline")
    incidents = []
    for inc in doc.get("incidents", []):
        if inc["kind"] not in INCIDENTS:
            raise ValueError(f"{name}: unknown incident {inc['kind']!r}")
        secs = _seconds(inc, f"{name} incident") if inc["kind"] != "shock" else float(
            inc.get("seconds", max(lg.interval_s for lg in loggers)))
        incidents.append(Incident(inc["kind"], _at(inc, route.duration_s, tail_s), secs,
                                  float(inc.get("g", 0.0))))
    contingencies = []
    for c in doc.get("contingencies", []):
        if c["type"] not in CONTINGENCIES:
            raise ValueError(f"{name}: unknown contingency {c['type']!r}")
        at_s = float(c["at_h"]) * 3600
        if not 0 < at_s < route.duration_s:
            raise ValueError(f"{name}: a contingency must lie inside the timeline")
        contingencies.append(Contingency(c["type"], at_s, str(c.get("note", ""))))
    transitions = []
    for t in doc.get("transitions", []):
        if t["kind"] not in ALERT_KINDS or t["state"] not in ALERT_STATES or (
                t["severity"] not in SEVERITIES):
            raise ValueError(f"{name}: a transition names an alert kind, a state and a severity")
        transitions.append(Transition(float(t["at_h"]) * 3600, t["kind"], t["state"],
                                      t["severity"]))
    return Scenario(
        name=name,
        title=doc.get("title", name),
        seed=int(doc.get("seed", 0)),
        alerts=alerts,
        exact_counts=bool(doc.get("exact_counts", False)),
        product=dict(doc["product"]),
        packaging=packaging,
        shipper=shipper,
        lane=lane,
        origin=dict(origin),
        destination=dict(destination),
        waypoints=waypoints,
        route=route,
        loggers=loggers,
        incidents=tuple(incidents),
        safety_margin_h=float(ship.get("safety_margin_h", 24.0)),
        max_gap_s=ship.get("max_gap_s"),
        deliver=bool(ship.get("deliver", True)),
        receive_after_h=float(ship.get("receive_after_h", 1.0)),
        tail_s=tail_s,
        contingencies=tuple(sorted(contingencies, key=lambda c: c.at_s)),
        transitions=tuple(sorted(transitions, key=lambda t: t.at_s)),
    )


def load(path: Path) -> Scenario:
    with path.open("rb") as fh:
        return parse(tomllib.load(fh))


def library(directory: Path = SCENARIO_DIR) -> dict[str, Scenario]:
    """Every scenario of the library by name, in file-name order."""
    found: dict[str, Scenario] = {}
    for path in sorted(directory.glob("*.toml")):
        sc = load(path)
        if sc.name in found:
            raise ValueError(f"duplicate scenario name {sc.name!r}")
        found[sc.name] = sc
    return found


def get(name: str) -> Scenario:
    try:
        return library()[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}") from None
