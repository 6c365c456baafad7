"""Time control: real time, accelerated, back-filled history with a live tail."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from simulators.clock import TimeMap

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAY = 86400.0


def test_real_time_starts_now():
    tm = TimeMap(NOW, anchor_s=DAY, speed=1.0)
    assert tm.device(0) == NOW and tm.wall_s(3600) == 3600


@pytest.mark.parametrize("speed", [60.0, 3600.0])
def test_accelerated_history_never_runs_ahead_of_the_wall_clock(speed):
    tm = TimeMap(NOW, anchor_s=10 * DAY, speed=speed)
    for offset in [0, 1, DAY, 5 * DAY, 10 * DAY]:
        device = tm.device(offset)
        wall = NOW + timedelta(seconds=tm.wall_s(offset))
        assert device <= wall + timedelta(microseconds=1)
    assert tm.device(10 * DAY) == NOW + timedelta(seconds=10 * DAY / speed)
    assert tm.wall_s(10 * DAY) == pytest.approx(10 * DAY / speed)


def test_backfill_puts_the_anchor_at_now_and_plays_the_tail_live():
    tm = TimeMap.backfill(NOW, anchor_s=DAY)
    assert math.isinf(tm.speed)
    assert tm.device(DAY) == NOW and tm.device(0) == NOW - timedelta(days=1)
    assert tm.wall_s(0) == 0 and tm.wall_s(DAY) == 0
    assert tm.wall_s(DAY + 30) == 30 and tm.device(DAY + 30) == NOW + timedelta(seconds=30)
    assert tm.is_history(DAY) and not tm.is_history(DAY + 1)


def test_bad_time_maps_are_refused():
    with pytest.raises(ValueError):
        TimeMap(datetime(2026, 11, 25), 0)  # noqa: DTZ001
    with pytest.raises(ValueError):
        TimeMap(NOW, 0, speed=0)
