"""Custody timeline rules (pure): order, departure, the clock, readings already stored, corrections."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.services.timeline import (
    CONTINGENCY,
    FUTURE_SKEW,
    Chain,
    Custody,
    Step,
    TimelineError,
    admit,
    placed,
    replay,
    retime,
    void,
)

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=3)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def chain(*steps: tuple[str, float], departed: float | None = None) -> Chain:
    return Chain(T0, None if departed is None else h(departed),
                 tuple(Step(t, h(x)) for t, x in steps))


TRANSIT = (("departed", 1), ("customs_hold", 10), ("customs_released", 14), ("delivered", 30))


def test_a_complete_chain_replays_to_its_custody() -> None:
    assert replay(chain(*TRANSIT, ("received", 31)), now=NOW) == Custody(
        "received", h(1), h(30), h(31))
    assert replay(chain(departed=2), now=NOW) == Custody("in_transit", h(2), None, None)
    assert replay(chain(), now=NOW).status == "packed"


@pytest.mark.parametrize(("steps", "departed", "field", "conflict", "words"), [
    # out of order: before the previous event of the chain
    ((("departed", 5), ("customs_hold", 4)), None, "at", False, "previous event"),
    ((*TRANSIT[:3], ("delivered", 13)), None, "at", False, "customs_released at"),
    # delivery and receipt never before departure (given at registration)
    ((("delivered", 1),), 2.0, "at", False, "before departure"),
    # before packing
    ((("departed", -1),), None, "at", False, "packed"),
    # an event its status may not follow
    ((("received", 5),), 1.0, "type", True, "cannot follow status 'in_transit'"),
    ((("departed", 1), ("departed", 2)), None, "type", True, "cannot follow"),
    # the future, beyond the clock skew
    ((("departed", 72.1),), None, "at", False, "future"),
])
def test_inconsistent_chains_are_refused(
    steps: tuple[tuple[str, float], ...], departed: float | None, field: str, conflict: bool,
    words: str,
) -> None:
    with pytest.raises(TimelineError) as caught:
        replay(chain(*steps, departed=departed), now=NOW)
    assert (caught.value.field, caught.value.conflict) == (field, conflict)
    assert words in caught.value.message


def test_the_clock_skew_is_tolerated_and_no_more() -> None:
    ok = Chain(T0, None, (Step("departed", NOW + FUTURE_SKEW),))
    assert replay(ok, now=NOW).departed_at == NOW + FUTURE_SKEW
    late = Chain(T0, None, (Step("departed", NOW + FUTURE_SKEW + timedelta(seconds=1)),))
    with pytest.raises(TimelineError, match="future"):
        replay(late, now=NOW)


def test_equal_times_keep_the_recorded_order() -> None:
    assert replay(chain(("departed", 1), ("delivered", 1), ("received", 1)), now=NOW).status == (
        "received")


@pytest.mark.parametrize(("kind", "at", "late"), [
    ("departed", 2.0, False),  # readings up to 2 h: at their time is not before them
    ("departed", 1.5, True),
    ("received", 2.0, True),  # a receipt at the last reading would take it out of the record
    ("received", 2.01, False),
])
def test_an_event_before_readings_already_stored_is_a_late_entry(
    kind: str, at: float, late: bool
) -> None:
    base = chain(("departed", 1), ("delivered", 1.2)) if kind == "received" else chain()
    step = Step(kind, h(at))
    if late:
        with pytest.raises(TimelineError) as caught:
            admit(base, step, now=NOW, latest_reading=h(2), late_entry_allowed=False)
        assert caught.value.conflict and caught.value.field == "at"
        assert "late entry" in caught.value.message and "2026-11-20T10:00:00Z" in caught.value.message
    _, is_late = admit(base, step, now=NOW, latest_reading=h(2), late_entry_allowed=True)
    assert is_late is late
    # With nothing stored yet nothing is late.
    assert admit(base, step, now=NOW, latest_reading=None, late_entry_allowed=False)[1] is False


def test_a_late_entry_still_obeys_the_chain() -> None:
    with pytest.raises(TimelineError, match="previous event"):
        admit(chain(("departed", 5)), Step("delivered", h(4)), now=NOW, latest_reading=h(9),
              late_entry_allowed=True)


def test_retime_keeps_the_event_between_its_neighbours() -> None:
    full = chain(*TRANSIT, ("received", 31))
    moved, custody = retime(full, 4, h(40), now=NOW)
    assert custody.received_at == h(40) and moved.steps[4] == Step("received", h(40))
    assert retime(full, 0, h(0.5), now=NOW)[1].departed_at == h(0.5)
    for index, at in ((4, 29.0), (1, 0.5), (1, 15.0), (0, -2.0)):
        with pytest.raises(TimelineError):
            retime(full, index, h(at), now=NOW)
    with pytest.raises(TimelineError, match="future"):
        retime(full, 4, NOW + timedelta(hours=1), now=NOW)


def test_void_takes_the_chain_back_and_refuses_to_break_it() -> None:
    full = chain(*TRANSIT, ("received", 31))
    _, custody = void(full, 4, now=NOW)
    assert custody == Custody("delivered", h(1), h(30), None)
    _, custody = void(void(full, 4, now=NOW)[0], 3, now=NOW)
    assert custody == Custody("in_transit", h(1), None, None)
    with pytest.raises(TimelineError) as caught:
        void(full, 1, now=NOW)  # customs_released would follow in_transit
    assert caught.value.conflict and caught.value.field == "void"
    assert "void the later events first" in caught.value.message


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        replay(chain(), now=datetime(2026, 11, 20))  # noqa: DTZ001


KINDS = ("departed", "customs_hold", "customs_released", "delivered", "received")


@st.composite
def valid_chains(draw: st.DrawFn) -> Chain:
    """A chain that follows the transitions, in time order, within the past."""
    steps, status, at = [], "packed", T0
    follow = {"packed": ["departed"], "in_transit": ["customs_hold", "delivered"],
              "customs_hold": ["customs_released", "delivered"],
              "delivered": ["received"], "received": []}
    goes = {"departed": "in_transit", "customs_hold": "customs_hold",
            "customs_released": "in_transit", "delivered": "delivered", "received": "received"}
    for _ in range(draw(st.integers(0, 7))):
        options = follow[status]
        if not options:
            break
        kind = draw(st.sampled_from(options))
        at = at + timedelta(minutes=draw(st.integers(0, 600)))
        steps.append(Step(kind, at))
        status = goes[kind]
    return Chain(T0, None, tuple(steps))


@given(valid_chains(), st.data())
def test_properties_of_valid_chains(c: Chain, data: st.DataObject) -> None:
    custody = replay(c, now=NOW)
    assert custody.status == (
        {"departed": "in_transit", "customs_hold": "customs_hold",
         "customs_released": "in_transit", "delivered": "delivered", "received": "received"}[
            c.steps[-1].type] if c.steps else "packed")
    if custody.delivered_at is not None:
        assert custody.departed_at is not None and custody.departed_at <= custody.delivered_at
    if len(c.steps) >= 2:
        # Any event moved before its predecessor is refused; moved onto it, accepted.
        i = data.draw(st.integers(1, len(c.steps) - 1))
        before = c.steps[i - 1].at - timedelta(seconds=data.draw(st.integers(1, 10**6)))
        with pytest.raises(TimelineError):
            retime(c, i, before, now=NOW)
        assert retime(c, i, c.steps[i - 1].at, now=NOW)[0].steps[i].at == c.steps[i - 1].at
    if c.steps:
        # The last event can always be voided; the rest replays as before it.
        shorter, custody = void(c, len(c.steps) - 1, now=NOW)
        assert custody == replay(Chain(T0, None, c.steps[:-1]), now=NOW)


# -- contingencies: recharged and rerouted leave the status as it is, in their place in time --

def test_contingencies_keep_the_status_and_move_the_clock_and_lane() -> None:
    c = Chain(T0, None, (Step("departed", h(1)), Step("customs_hold", h(10)),
                         Step("recharged", h(12)), Step("rerouted", h(13), "lane-b"),
                         Step("recharged", h(14))), lane_id="lane-a")
    assert replay(c, now=NOW) == Custody("customs_hold", h(1), None, None, "lane-b", h(14))
    # Back on the first lane by a second reroute.
    back = replace(c, steps=(*c.steps, Step("rerouted", h(15), "lane-a")))
    assert replay(back, now=NOW).lane_id == "lane-a"


@pytest.mark.parametrize(("steps", "field", "conflict", "words"), [
    ((Step("rerouted", h(2)),), "lane_id", False, "names the new lane"),
    ((Step("rerouted", h(2), "lane-a"),), "lane_id", True, "already on lane lane-a"),
    ((Step("departed", h(1)), Step("delivered", h(5)), Step("recharged", h(6))), "type", True,
     "cannot follow status 'delivered'"),
    ((Step("recharged", h(-1)),), "at", False, "packed"),
])
def test_contingencies_that_do_not_fit_are_refused(
    steps: tuple[Step, ...], field: str, conflict: bool, words: str
) -> None:
    with pytest.raises(TimelineError) as err:
        replay(Chain(T0, None, steps, lane_id="lane-a"), now=NOW)
    assert (err.value.field, err.value.conflict) == (field, conflict)
    assert words in err.value.message


def test_a_contingency_recorded_late_takes_its_place_in_time() -> None:
    c = chain(("departed", 1), ("customs_hold", 10), ("customs_released", 20))
    custody, late = admit(c, Step("recharged", h(15)), now=NOW, latest_reading=None,
                          late_entry_allowed=False)
    assert (custody.status, custody.recharged_at, late) == ("in_transit", h(15), False)
    # A status event recorded out of order is still refused.
    with pytest.raises(TimelineError, match="previous event"):
        admit(c, Step("customs_hold", h(15)), now=NOW, latest_reading=None,
              late_entry_allowed=False)
    # Before readings already stored: a late entry, as for any event.
    with pytest.raises(TimelineError, match="late entry"):
        admit(c, Step("recharged", h(15)), now=NOW, latest_reading=h(16),
              late_entry_allowed=False)


@given(valid_chains(), st.lists(st.tuples(st.sampled_from(sorted(CONTINGENCY)),
                                          st.integers(0, 72 * 60)), max_size=4))
def test_placing_contingencies_keeps_the_status_events_order(
    c: Chain, extra: list[tuple[str, int]]
) -> None:
    added = [Step(t, T0 + timedelta(minutes=m), "lane-x" if t == "rerouted" else None)
             for t, m in extra]
    out = placed((*c.steps, *added))
    assert [s for s in out if s.type not in CONTINGENCY] == list(c.steps)
    assert sorted(out, key=lambda s: s.at) == list(out)
