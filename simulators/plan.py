"""A scenario played out: the world's truth, shipment events and each logger's transmissions."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from simulators import payloads
from simulators.ambient import profile
from simulators.logger import LoggerSpec, SimulatedReading, Transmission, Truth, run_logger
from simulators.scenario import Scenario
from simulators.thermal import ThermalTrace, shipper, simulate


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    offset_s: float
    type: str


@dataclass(frozen=True, slots=True)
class LoggerPlan:
    spec: LoggerSpec
    transmissions: tuple[Transmission, ...]
    readings: tuple[SimulatedReading, ...]  # every reading taken (sent or not)

    @property
    def sent(self) -> frozenset[SimulatedReading]:
        """The distinct readings that left the logger at least once."""
        return frozenset(r for tx in self.transmissions for r in tx.readings)


@dataclass(frozen=True, slots=True)
class Plan:
    scenario: Scenario
    trace: ThermalTrace
    events: tuple[PlannedEvent, ...]
    loggers: tuple[LoggerPlan, ...]


@dataclass(frozen=True, slots=True)
class Message:
    """One publish: when (timeline offset), which logger, what bytes."""

    send_s: float
    logger_id: str
    payload: bytes
    readings: int
    duplicate: bool


def shipment_events(sc: Scenario) -> tuple[PlannedEvent, ...]:
    """departed at the first move, customs holds and releases, contingencies (recharges),
    delivered at the last arrival."""
    events: list[PlannedEvent] = []
    last_move_end = None
    for seg in sc.route.segments:
        st = seg.step
        if st.is_move:
            if not any(e.type == "departed" for e in events):
                events.append(PlannedEvent(seg.start_s, "departed"))
            last_move_end = seg.end_s
        elif st.kind == "customs":
            events.append(PlannedEvent(seg.start_s, "customs_hold"))
            if st.release:
                events.append(PlannedEvent(seg.end_s, "customs_released"))
    events.extend(PlannedEvent(c.at_s, c.type) for c in sc.contingencies)
    if sc.deliver and last_move_end is not None:
        events.append(PlannedEvent(last_move_end, "delivered"))
        received = last_move_end + sc.receive_after_h * 3600
        if received <= sc.duration_s:
            events.append(PlannedEvent(received, "received"))
    return tuple(sorted(events, key=lambda e: e.offset_s))


def _windows(sc: Scenario, kind: str) -> list[tuple[float, float]]:
    return [(i.at_s, i.at_s + i.seconds) for i in sc.incidents if i.kind == kind]


def build(sc: Scenario) -> Plan:
    """Play the scenario out (pure and seeded: the same scenario always gives the same plan)."""
    rng = random.Random(sc.seed)
    route = sc.route

    def ambient(offset_s: float) -> float:
        return profile(route.segment_at(offset_s).step.ambient).at(offset_s / 3600.0)

    kind = shipper(sc.shipper)
    openings = _windows(sc, "lid_open")
    trace = simulate(kind, ambient, sc.duration_s, hold_h=sc.qualified_hold_h, openings=openings,
                     recharges=sc.recharges_s)
    shocks = [(i.at_s, i.at_s + i.seconds, i.g) for i in sc.incidents if i.kind == "shock"]
    ln2 = sc.shipper == "ln2_dry_shipper"

    def world(t: float) -> Truth:
        seg = route.segment_at(t)
        return Truth(
            temp_c=trace.temp_at(t),
            position=route.position_at(t),
            coverage=seg.step.has_coverage,
            light=any(a <= t < b for a, b in openings),
            shock_g=max((g for a, b, g in shocks if a <= t < b), default=0.0),
            ln2_level_pct=100.0 * trace.charge_at(t) if ln2 else None,
        )

    events = shipment_events(sc)
    stop = next((e.offset_s for e in events if e.type == "received"), sc.duration_s)
    plans = []
    for spec in sc.loggers:
        # Keep device times inside the shipment's [packed, received) window despite skew.
        start, end = max(0.0, -spec.skew_s), stop - max(0.0, spec.skew_s) - 1.0
        txs, taken = run_logger(spec, world, start, end, random.Random(rng.random()),
                                silences=_windows(sc, "silence"))
        plans.append(LoggerPlan(spec, tuple(txs), tuple(taken)))
    return Plan(sc, trace, events, tuple(plans))


def logger_id(spec: LoggerSpec, tag: str) -> str:
    return f"{spec.id}-{tag}" if tag else spec.id


def encode(tx: Transmission, spec: LoggerSpec, t0: datetime) -> bytes:
    stamps = [payloads.device_time(t0, r, spec.skew_s) for r in tx.readings]
    if tx.fmt == "senml":
        return payloads.encode_senml(tx.readings, stamps)
    unix = spec.ts_format == "unix"
    if tx.batch:
        return payloads.encode_batch(tx.readings, stamps, unix=unix)
    return payloads.encode_object(tx.readings[0], stamps[0], unix=unix)


def messages(plan: Plan, t0: datetime, tag: str = "") -> list[Message]:
    """Every publish of every logger, in send order, with device times anchored at `t0`."""
    out: list[Message] = []
    for lp in plan.loggers:
        lid = logger_id(lp.spec, tag)
        for tx in lp.transmissions:
            out.append(Message(tx.send_s, lid, encode(tx, lp.spec, t0), len(tx.readings),
                               tx.duplicate))
    out.sort(key=lambda m: m.send_s)
    return out
