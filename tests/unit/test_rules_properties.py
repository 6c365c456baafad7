"""Invariants of the evaluation core (hypothesis, derandomised so every run is the same)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.rules import (
    LaneSpec,
    Leg,
    Memo,
    ProductProfile,
    Sample,
    SeriesContext,
    ShipmentEvent,
    ShipmentSpec,
    Waypoint,
    evaluate,
)
from alerts.rules.advance import ExcursionRecord, open_excursions
from alerts.rules.mkt import mkt_from_sums
from tests.unit.rules_support import LANE, T0, MemoryEngine, advance, ctx, initial_state

PROPS = settings(max_examples=150, deadline=None, derandomize=True)
TEMPS = st.sampled_from([-1.0, 0.5, 1.9, 2.0, 4.99, 5.0, 8.0, 8.01, 9.0, 12.5, 16.0])
PLACES = st.sampled_from([None, (52.31, 4.76), (48.85, 2.35), (42.36, -71.01), (50.0, -20.0)])
# A lane a shipment may be rerouted onto (via Paris): rule 6's reroute mid-record.
VIA_PARIS = LaneSpec(20.0, 30.0, 50.0, (Waypoint("CDG", 48.85, 2.35, 5.0, 1.0),
                                        Waypoint("BOS", 42.36, -71.01, 5.0, 2.0)))


@st.composite
def readings_of(draw: st.DrawFn, logger_id: str) -> list[Sample]:
    offsets = draw(st.lists(st.integers(0, 8 * 3600), min_size=1, max_size=30, unique=True))
    out = []
    for off in sorted(offsets):
        place = draw(PLACES)
        lateness = draw(st.sampled_from([0, 0, 30, 4000]))
        out.append(Sample(
            logger_id, T0 + timedelta(seconds=off), draw(TEMPS),
            lat=place[0] if place else None, lon=place[1] if place else None,
            battery_pct=draw(st.sampled_from([None, 10.0, 22.0, 80.0])),
            light=draw(st.sampled_from([None, False, True])),
            shock_g=draw(st.sampled_from([None, 0.5, 12.0])),
            received_at=T0 + timedelta(seconds=off + lateness),
        ))
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, SeriesContext], list[Sample]]:
    product = ProductProfile(
        2.0, 8.0, draw(st.sampled_from([0.0, 600.0, 3600.0])),
        alarm_delay_s=draw(st.sampled_from([0.0, 300.0, 600.0])),
        critical_min_c=draw(st.sampled_from([None, 0.0])),
        critical_max_c=draw(st.sampled_from([None, 15.0])), shock_limit_g=5.0,
    )
    every = draw(st.integers(1, 6))
    loggers = draw(st.sampled_from([("L1",), ("L1", "L2")]))
    reroute = draw(st.sampled_from([None, 2 * 3600, 5 * 3600 + 7]))
    legs = () if reroute is None else (Leg(T0 + timedelta(seconds=reroute), VIA_PARIS),)
    contexts = {lid: replace(ctx(product, max_gap_s=draw(st.sampled_from([300.0, 900.0])),
                                 checkpoint_every=every), reroutes=legs) for lid in loggers}
    readings = [r for lid in loggers for r in draw(readings_of(lid))]
    return contexts, readings


def reference(contexts: dict[str, SeriesContext], readings: list[Sample]) -> MemoryEngine:
    """Everything in one batch, in device-time order."""
    engine = MemoryEngine(contexts)
    engine.ingest(sorted(readings, key=lambda r: r.ts))
    return engine


@PROPS
@given(scenarios(), st.integers(0, 2**32 - 1))
def test_result_independent_of_batching_order_and_duplicates(
    scenario: tuple[dict[str, SeriesContext], list[Sample]], seed: int
) -> None:
    contexts, readings = scenario
    rng = random.Random(seed)
    shuffled = readings[:]
    rng.shuffle(shuffled)
    cuts = sorted({*rng.sample(range(1, len(shuffled)), k=min(len(shuffled) - 1, rng.randint(0, 6))),
                   len(shuffled)})
    batches = [shuffled[a:b] for a, b in zip([0, *cuts[:-1]], cuts, strict=True)]
    # Redeliveries: some readings arrive again later (the broker's at-least-once).
    batches.append(rng.sample(readings, k=min(len(readings), 3)))
    engine = MemoryEngine(contexts)
    for batch in batches:
        engine.ingest(batch)
    expected = reference(contexts, readings)
    assert engine.states == expected.states
    assert engine.all_excursions() == expected.all_excursions()
    first = next(iter(contexts.values()))
    spec = ShipmentSpec(T0, 96.0, first.product, LANE,
                        tuple((lid, c.max_gap_s) for lid, c in contexts.items()), departed_at=T0,
                        events=tuple(ShipmentEvent("rerouted", leg.start, leg.lane)
                                     for leg in first.reroutes))
    assert spec.reroutes == first.reroutes
    now = T0 + timedelta(hours=9)
    assert evaluate(spec, engine.states, {}, Memo(), now) == evaluate(
        spec, expected.states, {}, Memo(), now)


@PROPS
@given(scenarios())
def test_incremental_one_by_one_equals_all_at_once(
    scenario: tuple[dict[str, SeriesContext], list[Sample]],
) -> None:
    contexts, readings = scenario
    for lid, c in contexts.items():
        mine = sorted((r for r in readings if r.logger_id == lid), key=lambda r: r.ts)
        whole = advance(initial_state(lid, c), mine, c)
        state = initial_state(lid, c)
        closed: list[ExcursionRecord] = []
        for r in mine:
            step = advance(state, [r, r], c)  # each delivered twice
            state = step.state
            closed.extend(step.closed)
            assert step.duplicates == 1
        assert state == whole.state and tuple(closed) == whole.closed
        assert open_excursions(state) == open_excursions(whole.state)


@PROPS
@given(scenarios())
def test_budget_used_never_exceeds_elapsed_time_and_mkt_within_min_max(
    scenario: tuple[dict[str, SeriesContext], list[Sample]],
) -> None:
    contexts, readings = scenario
    for s in reference(contexts, readings).states.values():
        assert s.first_us is not None and s.last_us is not None
        elapsed = s.last_us - s.first_us
        assert 0 <= s.out_us <= s.held_us <= elapsed
        assert s.held_us + s.unknown_us == elapsed
        assert s.high_us + s.low_us == s.out_us
        mkt = mkt_from_sums(s.mkt_terms, s.mkt_weight_s)
        if mkt is not None:
            assert s.min_c is not None and s.max_c is not None
            assert s.min_c - 1e-9 <= mkt <= s.max_c + 1e-9
        for runs in (s.runs.values(),):
            for run in runs:
                assert run.known_us <= s.last_us - run.start
        for eps in s.episodes.values():
            for ep in eps:
                assert ep.start <= ep.alarm_us and (ep.end is None or ep.end >= ep.start)
