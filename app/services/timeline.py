"""Custody timeline rules: which event may follow which, and when (pure; the clock passed in)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

_UNDER_WAY = frozenset({"packed", "in_transit", "customs_hold"})
# Which status each event may follow, and the status it leads to (None: the status stays).
TRANSITIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "departed": (frozenset({"packed"}), "in_transit"),
    "customs_hold": (frozenset({"in_transit"}), "customs_hold"),
    "customs_released": (frozenset({"customs_hold"}), "in_transit"),
    "delivered": (frozenset({"in_transit", "customs_hold"}), "delivered"),
    "received": (frozenset({"delivered"}), "received"),
    # Contingencies (PRODUCT.md rule 6): the hold clock restarts; another lane from then on.
    "recharged": (_UNDER_WAY, None),
    "rerouted": (_UNDER_WAY, None),
}
# Events that leave the status as it is: they take their place in time in the chain, also when
# recorded after later events (a depot's re-icing reported once the shipper is released).
CONTINGENCY = frozenset(t for t, (_, after) in TRANSITIONS.items() if after is None)
# Clocks of the people and systems recording events drift a little; more than this ahead of the
# server's clock is an event that has not happened yet.
FUTURE_SKEW = timedelta(minutes=5)


class TimelineError(ValueError):
    """An event that does not fit the custody chain: `field` and why; `conflict` when it clashes
    with what is recorded (409) rather than being impossible on its own (422)."""

    def __init__(self, field: str, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.conflict = conflict


@dataclass(frozen=True, slots=True)
class Step:
    """One recorded event of the chain (voided events are not steps); `lane_id`: a reroute's."""

    type: str
    at: datetime
    lane_id: str | None = None


@dataclass(frozen=True, slots=True)
class Chain:
    """A shipment's custody chain: packed (and perhaps departed) at registration, then its steps
    in the order they were recorded."""

    packed_at: datetime
    departed_at: datetime | None  # given at registration, before any event
    steps: tuple[Step, ...] = ()
    lane_id: str | None = None  # the lane of registration


@dataclass(frozen=True, slots=True)
class Custody:
    """Where a chain leaves the shipment."""

    status: str
    departed_at: datetime | None
    delivered_at: datetime | None
    received_at: datetime | None
    lane_id: str | None = None  # the lane it is on after the chain
    recharged_at: datetime | None = None  # the latest recharge


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")


def replay(chain: Chain, *, now: datetime) -> Custody:
    """The custody state after the chain; raises TimelineError where the chain is inconsistent:
    an event its status may not follow, one before the previous event, before packing, before
    departure (delivery and receipt), or more than FUTURE_SKEW after `now`."""
    _require_aware(now, "now")
    status = "in_transit" if chain.departed_at is not None else "packed"
    departed, delivered, received = chain.departed_at, None, None
    lane, recharged = chain.lane_id, None
    previous: Step | None = None
    for step in chain.steps:
        _require_aware(step.at, f"{step.type} time")
        allowed, after = TRANSITIONS[step.type]
        if status not in allowed:
            raise TimelineError(
                "type", f"a '{step.type}' event cannot follow status '{status}'", conflict=True)
        if step.at < chain.packed_at:
            raise TimelineError("at", "must not be before the shipment was packed")
        if step.at > now + FUTURE_SKEW:
            raise TimelineError("at", f"must not be in the future (more than "
                                      f"{int(FUTURE_SKEW.total_seconds() // 60)} min ahead)")
        if previous is not None and step.at < previous.at:
            raise TimelineError("at", f"must not be before the previous event of the chain "
                                      f"({previous.type} at {_iso(previous.at)})")
        if step.type in ("delivered", "received") and departed is not None and step.at < departed:
            raise TimelineError("at", f"must not be before departure ({_iso(departed)})")
        if step.type == "departed":
            departed = step.at
        elif step.type == "delivered":
            delivered = step.at
        elif step.type == "received":
            received = step.at
        elif step.type == "recharged":
            recharged = step.at
        elif step.type == "rerouted":
            lane = _reroute(step, lane)
        status, previous = after or status, step
    return Custody(status, departed, delivered, received, lane, recharged)


def _reroute(step: Step, lane: str | None) -> str:
    if step.lane_id is None:
        raise TimelineError("lane_id", "a 'rerouted' event names the new lane (lane_id)")
    if step.lane_id == lane:
        raise TimelineError("lane_id", f"the shipment is already on lane {lane}", conflict=True)
    return step.lane_id


def placed(steps: tuple[Step, ...] | list[Step]) -> tuple[Step, ...]:
    """The steps with each contingency event moved to its place in time among the others
    (status events keep their recorded order: replay judges it)."""
    status = [s for s in steps if s.type not in CONTINGENCY]
    pending = sorted((s for s in steps if s.type in CONTINGENCY), key=lambda s: s.at)
    out: list[Step] = []
    for s in status:
        while pending and pending[0].at < s.at:
            out.append(pending.pop(0))
        out.append(s)
    return (*out, *pending)


def admit(chain: Chain, step: Step, *, now: datetime, latest_reading: datetime | None,
          late_entry_allowed: bool) -> tuple[Custody, bool]:
    """The custody after appending `step`, and whether it is a late entry: a time before readings
    already stored for the shipment (a receipt at or before the latest one, whose readings would
    leave the record). A late entry is refused unless `late_entry_allowed` (a coordinator's
    correction with a reason)."""
    custody = replay(replace(chain, steps=placed((*chain.steps, step))), now=now)
    if latest_reading is None:
        return custody, False
    late = step.at < latest_reading or (step.type == "received" and step.at <= latest_reading)
    if late and not late_entry_allowed:
        raise TimelineError(
            "at", f"readings up to {_iso(latest_reading)} are already stored for this shipment: "
                  "an event before them is a late entry, which only a coordinator records, "
                  "with a correction_reason", conflict=True)
    return custody, late


def retime(chain: Chain, index: int, at: datetime, *, now: datetime) -> tuple[Chain, Custody]:
    """The chain with step `index` moved to `at` (a correction): it must still fit between its
    neighbours and every other bound; readings already stored do not bound a correction."""
    steps = list(chain.steps)
    steps[index] = replace(steps[index], at=at)
    corrected = replace(chain, steps=placed(steps))
    return corrected, replay(corrected, now=now)


def void(chain: Chain, index: int, *, now: datetime) -> tuple[Chain, Custody]:
    """The chain without step `index` (recorded in error): what remains must be a valid chain."""
    corrected = replace(chain, steps=chain.steps[:index] + chain.steps[index + 1:])
    try:
        return corrected, replay(corrected, now=now)
    except TimelineError as exc:
        raise TimelineError(
            "void", f"without this event the chain breaks ({exc.message}): void the later "
                    "events first", conflict=True) from exc


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
