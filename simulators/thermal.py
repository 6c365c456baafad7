"""Lumped-capacitance thermal model of a shipper: coolant reservoir + payload, driven by ambient."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simulators.ambient import profile

# The qualification ambient: shippers are sized so their coolant lasts exactly the qualified hold
# time under this 24 h cycle (its mean drives the calibration below).
QUALIFICATION_PROFILE = "ista7e_summer"


def _profile_mean(name: str) -> float:
    p = profile(name)
    steps = 24 * 60
    return sum(p.at(i * p.period_h / steps) for i in range(steps)) / steps


@dataclass(frozen=True, slots=True)
class Shipper:
    """A shipper type. `charge` is the coolant left (1 = freshly charged), spent at a rate ∝ ΔT."""

    kind: str
    phase_c: float  # coolant phase change: LN2 boils at −196 °C, dry ice sublimes at −78.5 °C
    payload_offset_c: float  # payload sits above the coolant (vapour-phase gradient)
    gain: float  # share of (ambient − coolant) that reaches the payload while coolant works
    tau_in_h: float  # payload ↔ coolant coupling
    tau_out_h: float  # insulation once the coolant is spent (or a PCM is frozen solid)
    tau_open_h: float  # lid open: payload exchanges with ambient this fast
    refreezable: bool  # a phase-change material refreezes in the cold; LN2 and dry ice do not
    initial_charge: float = 1.0

    def steady_c(self, ambient_c: float) -> float:
        """Payload temperature while the coolant still works."""
        return self.phase_c + self.payload_offset_c + self.gain * (ambient_c - self.phase_c)


SHIPPERS: dict[str, Shipper] = {
    s.kind: s
    for s in (
        Shipper("ln2_dry_shipper", -196.0, 6.0, 0.0, 0.5, 8.0, 2.0, False),
        Shipper("dry_ice", -78.5, 3.0, 0.01, 1.0, 6.0, 2.0, False),
        # A PCM box conditioned 80 % solid: room left to absorb cold as well as heat.
        Shipper("passive_2_8", 5.0, 0.0, 0.08, 0.5, 5.0, 3.0, True, initial_charge=0.8),
    )
}


def shipper(kind: str) -> Shipper:
    try:
        return SHIPPERS[kind]
    except KeyError:
        raise ValueError(f"unknown shipper type {kind!r}") from None


@dataclass(frozen=True, slots=True)
class ThermalTrace:
    """Payload temperature and coolant charge every `step_s` from offset 0."""

    step_s: float
    temps: tuple[float, ...]
    charges: tuple[float, ...]

    def _interp(self, values: tuple[float, ...], offset_s: float) -> float:
        x = max(0.0, offset_s) / self.step_s
        i = min(int(x), len(values) - 1)
        if i + 1 >= len(values):
            return values[-1]
        f = x - i
        return values[i] + (values[i + 1] - values[i]) * f

    def temp_at(self, offset_s: float) -> float:
        return self._interp(self.temps, offset_s)

    def charge_at(self, offset_s: float) -> float:
        return self._interp(self.charges, offset_s)

    def first_above(self, limit_c: float) -> float | None:
        """The first offset (s) at which the payload is above `limit_c`, or None."""
        for i, t in enumerate(self.temps):
            if t > limit_c:
                return i * self.step_s
        return None


def simulate(
    kind: Shipper,
    ambient: Callable[[float], float],
    duration_s: float,
    *,
    hold_h: float,
    step_s: float = 60.0,
    openings: Sequence[tuple[float, float]] = (),
    initial_c: float | None = None,
    recharges: Sequence[float] = (),
) -> ThermalTrace:
    """Integrate the model over [0, duration_s]; `ambient(offset_s)` gives the ambient °C.

    The coolant is sized so that `initial_charge` lasts exactly `hold_h` under the qualification
    profile: that is what a qualified hold time means. At each offset in `recharges` (re-iced,
    LN2 recharged) the coolant is full again.
    """
    dt_ref = _profile_mean(QUALIFICATION_PROFILE) - kind.phase_c
    spend_per_deg_s = kind.initial_charge / (dt_ref * hold_h * 3600.0)
    a_in = 1.0 - math.exp(-step_s / (kind.tau_in_h * 3600.0))
    a_out = 1.0 - math.exp(-step_s / (kind.tau_out_h * 3600.0))
    a_open = 1.0 - math.exp(-step_s / (kind.tau_open_h * 3600.0))
    temp = kind.steady_c(ambient(0.0)) if initial_c is None else initial_c
    charge = kind.initial_charge
    n = int(math.ceil(duration_s / step_s)) + 1
    temps: list[float] = []
    charges: list[float] = []
    pending = sorted(recharges)
    for i in range(n):
        t = i * step_s
        while pending and pending[0] <= t:
            pending.pop(0)
            charge = kind.initial_charge
        temps.append(temp)
        charges.append(charge)
        amb = ambient(t)
        heat_in = amb - kind.phase_c  # > 0 melts/boils the coolant, < 0 refreezes a PCM
        working = charge > 0.0 and (heat_in >= 0.0 or (kind.refreezable and charge < 1.0))
        if working:
            if heat_in >= 0.0 or kind.refreezable:
                charge = min(1.0, max(0.0, charge - heat_in * spend_per_deg_s * step_s))
            temp += (kind.steady_c(amb) - temp) * a_in
        else:
            temp += (amb - temp) * a_out
        if any(start <= t < end for start, end in openings):
            temp += (amb - temp) * a_open
    return ThermalTrace(step_s, tuple(temps), tuple(charges))


def ambient_from_profile(name: str) -> Callable[[float], float]:
    """A constant-profile ambient function of offset seconds (for tests and quick looks)."""
    p = profile(name)
    return lambda offset_s: p.at(offset_s / 3600.0)
