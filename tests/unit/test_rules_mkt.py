"""MKT per USP <1079.2> (ΔH/R = 10 000 K), by hand-computed values."""

from __future__ import annotations

import math

import pytest

from alerts.rules import ProductProfile, mkt_c
from alerts.rules.mkt import mkt_from_sums
from tests.unit.rules_support import ctx, fold, series


def _by_hand(pairs: list[tuple[float, float]]) -> float:
    num = sum(w * math.exp(-10000.0 / (t + 273.15)) for t, w in pairs)
    return 10000.0 / -math.log(num / sum(w for _, w in pairs)) - 273.15


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([(5.0, 1.0), (15.0, 1.0)], 11.387),  # PRODUCT.md's check: not the arithmetic 10
        ([(5.0, 3.0), (15.0, 1.0)], 8.786),  # weights are hold times
        ([(5.0, 1.0)], 5.0),
        ([(-20.0, 1.0), (-20.0, 7.0)], -20.0),
        ([(2.0, 1.0), (8.0, 1.0), (25.0, 1.0)], 17.016),
        ([(5.0, 0.0), (15.0, 1.0)], 15.0),  # a reading that held for no time has no weight
    ],
)
def test_mkt_values(pairs: list[tuple[float, float]], expected: float) -> None:
    assert mkt_c(pairs) == pytest.approx(expected, abs=0.001)
    assert mkt_c(pairs) == pytest.approx(_by_hand(pairs), abs=1e-9)


def test_mkt_without_weight_is_none() -> None:
    assert mkt_c([]) is None
    assert mkt_c([(5.0, 0.0)]) is None
    assert mkt_from_sums(0.0, 0.0) is None


def test_negative_weight_is_refused() -> None:
    with pytest.raises(ValueError):
        mkt_c([(5.0, -1.0)])


def test_mkt_through_sample_and_hold() -> None:
    # 5 °C holds 10 min, 15 °C holds 10 min; the last reading has not held yet.
    state = fold(series([(0, 5.0), (10, 15.0), (20, 4.0)]), ctx(max_gap_s=1800))
    assert mkt_from_sums(state.mkt_terms, state.mkt_weight_s) == pytest.approx(11.387, abs=0.001)


@pytest.mark.parametrize(
    ("low", "high", "applicable"),
    [(2.0, 8.0, True), (15.0, 25.0, True), (-25.0, -15.0, False), (-196.0, -150.0, False),
     (-80.0, 0.0, False), (-5.0, 0.5, True)],
)
def test_mkt_applicability(low: float, high: float, applicable: bool) -> None:
    assert ProductProfile(low, high, 3600.0).mkt_applicable is applicable
