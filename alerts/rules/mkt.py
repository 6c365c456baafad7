"""Mean kinetic temperature per USP <1079.2>, time-weighted (ΔH/R = 10 000 K)."""

from __future__ import annotations

import math
from collections.abc import Iterable

# ΔH = 83.144 kJ/mol, R = 8.3144 J/(mol·K): ΔH/R = 10 000 K exactly.
DELTA_H_OVER_R = 10_000.0
KELVIN = 273.15


def boltzmann(temp_c: float) -> float:
    """e^(−ΔH/(R·T)) for one temperature: the per-reading term of the MKT sum."""
    return math.exp(-DELTA_H_OVER_R / (temp_c + KELVIN))


def mkt_from_sums(weighted_terms: float, total_weight: float) -> float | None:
    """MKT = (ΔH/R) / −ln(Σ wᵢ·e^(−ΔH/(R·Tᵢ)) / Σ wᵢ) − 273.15; None without weight."""
    if total_weight <= 0.0 or weighted_terms <= 0.0:
        return None
    return DELTA_H_OVER_R / -math.log(weighted_terms / total_weight) - KELVIN


def mkt_c(samples: Iterable[tuple[float, float]]) -> float | None:
    """MKT of (temperature °C, weight) pairs — the weight is the time the value held."""
    terms = 0.0
    total = 0.0
    for temp_c, weight in samples:
        if weight < 0:
            raise ValueError("weights must not be negative")
        terms += weight * boltzmann(temp_c)
        total += weight
    return mkt_from_sums(terms, total)
