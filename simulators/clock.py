"""Time control: map a scenario's timeline onto device times and wall-clock publish times."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class TimeMap:
    """Offsets up to `anchor_s` play at `speed` (inf = back-filled at once), later ones in real time.

    Device times are chosen so that the anchor is 'now' when it is reached: an accelerated or
    back-filled history never carries future timestamps, and the live tail is truly live.
    """

    wall_start: datetime
    anchor_s: float
    speed: float = 1.0

    def __post_init__(self) -> None:
        if self.wall_start.tzinfo is None:
            raise ValueError("wall_start must be timezone-aware")
        if not self.speed > 0:
            raise ValueError("speed must be positive")

    @classmethod
    def backfill(cls, wall_start: datetime, anchor_s: float) -> TimeMap:
        return cls(wall_start, anchor_s, math.inf)

    @property
    def history_wall_s(self) -> float:
        """Wall seconds the history (up to the anchor) takes to play."""
        return 0.0 if math.isinf(self.speed) else self.anchor_s / self.speed

    @property
    def t0(self) -> datetime:
        """The device time of offset 0."""
        return self.wall_start + timedelta(seconds=self.history_wall_s - self.anchor_s)

    def device(self, offset_s: float) -> datetime:
        return self.t0 + timedelta(seconds=offset_s)

    def wall_s(self, offset_s: float) -> float:
        """Seconds after `wall_start` at which what happens at `offset_s` is played."""
        if offset_s <= self.anchor_s:
            return 0.0 if math.isinf(self.speed) else offset_s / self.speed
        return self.history_wall_s + (offset_s - self.anchor_s)

    def is_history(self, offset_s: float) -> bool:
        return offset_s <= self.anchor_s
