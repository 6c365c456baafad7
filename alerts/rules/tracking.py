"""Mutable working copies of the frozen state parts, used only inside one `advance` call."""

from __future__ import annotations

from alerts.rules.state import Episode, Run, Visit


class MutableRun:
    __slots__ = ("absorbed", "alarm_us", "known_us", "late", "peak", "start", "unknown_us")

    def __init__(self, start: int, known_us: int = 0, unknown_us: int = 0,
                 peak: float | None = None, late: bool = False, alarm_us: int | None = None,
                 absorbed: bool = False) -> None:
        self.start, self.known_us, self.unknown_us = start, known_us, unknown_us
        self.peak, self.late, self.alarm_us, self.absorbed = peak, late, alarm_us, absorbed

    @classmethod
    def thaw(cls, r: Run) -> MutableRun:
        return cls(r.start, r.known_us, r.unknown_us, r.peak, r.late, r.alarm_us, r.absorbed)

    def freeze(self) -> Run:
        return Run(self.start, self.known_us, self.unknown_us, self.peak, self.late,
                   self.alarm_us, self.absorbed)


class MutableEpisode:
    __slots__ = ("alarm_us", "confirmed", "count", "end", "last_us", "late", "peak", "start")

    def __init__(self, start: int, alarm_us: int, end: int | None = None, confirmed: bool = False,
                 late: bool = False, peak: float | None = None, count: int = 1,
                 last_us: int = 0) -> None:
        self.start, self.alarm_us, self.end, self.confirmed = start, alarm_us, end, confirmed
        self.late, self.peak, self.count, self.last_us = late, peak, count, last_us

    @classmethod
    def thaw(cls, e: Episode) -> MutableEpisode:
        return cls(e.start, e.alarm_us, e.end, e.confirmed, e.late, e.peak, e.count, e.last_us)


def freeze_episode(e: MutableEpisode) -> Episode:
    return Episode(e.start, e.alarm_us, e.end, e.confirmed, e.late, e.peak, e.count, e.last_us)


class MutableVisit:
    __slots__ = ("end", "last_in", "start", "waypoint")

    def __init__(self, waypoint: int, start: int, last_in: int, end: int | None = None) -> None:
        self.waypoint, self.start, self.last_in, self.end = waypoint, start, last_in, end

    @classmethod
    def thaw(cls, v: Visit) -> MutableVisit:
        return cls(v.waypoint, v.start, v.last_in, v.end)

    def freeze(self) -> Visit:
        return Visit(self.waypoint, self.start, self.last_in, self.end)
