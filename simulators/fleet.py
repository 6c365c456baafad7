"""Fleet load generator: N simulated loggers on M lanes publishing live, over several processes."""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import queue
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from simulators.publisher import Publisher, PublishError, telemetry_topic

# Lane end points for synthetic fleet lanes (hubs of European and US cell-therapy logistics).
HUBS = (
    (52.29, 4.76), (50.03, 8.57), (48.35, 11.79), (51.47, -0.45), (49.01, 2.55), (47.46, 8.55),
    (45.63, 8.72), (40.49, -3.57), (55.62, 12.65), (59.65, 17.92), (40.69, -74.17),
    (42.37, -71.02), (41.98, -87.90), (37.62, -122.38), (33.94, -118.41), (25.25, 55.36),
)
CLASSES = ((5.0, 0.8), (-75.0, 1.0), (-190.0, 0.6))  # steady °C and noise: 2–8, dry ice, LN2
LANE_HOURS = 24.0


class FleetPublisher(Protocol):
    """What the fleet needs of a publisher (simulators.publisher.Publisher, benchmarks/fastmqtt.py)."""

    RATE_PER_PROCESS: ClassVar[int]
    published: int
    acked: int

    @classmethod
    def for_fleet(cls, url: str, client_id: str) -> FleetPublisher: ...
    def connect(self, timeout: float = 10.0) -> FleetPublisher: ...
    def publish(self, topic: str, payload: str | bytes) -> None: ...
    def idle(self) -> None: ...
    def flush(self, timeout: float = 30.0) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FleetSpec:
    loggers: int
    interval_s: float
    duration_s: float | None = None
    lanes: int = 8
    prefix: str = "coldchain/v1"
    id_prefix: str = "fleet"
    seed: int = 0
    processes: int = 0  # 0: as many as the target rate needs, up to the CPU count
    # The publisher class (`for_fleet(url, client_id)`, RATE_PER_PROCESS): paho's by default;
    # benchmarks/fleet.py passes its lean socket publisher. A class, so spawned children get it.
    publisher: type[FleetPublisher] = Publisher
    ids: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.loggers <= 0 or self.interval_s <= 0 or self.lanes <= 0:
            raise ValueError("loggers, interval and lanes must be positive")

    @property
    def target_rate(self) -> float:
        return self.loggers / self.interval_s

    def logger_id(self, i: int) -> str:
        return self.ids[i] if self.ids else f"{self.id_prefix}-{i:06d}"

    def worker_count(self) -> int:
        if self.processes > 0:
            return min(self.processes, self.loggers)
        want = max(1, math.ceil(self.target_rate / self.publisher.RATE_PER_PROCESS))
        return min(want, os.cpu_count() or 1, self.loggers)


@dataclass(frozen=True, slots=True)
class FleetResult:
    published: int
    acked: int
    elapsed_s: float
    max_lag_s: float
    errors: tuple[str, ...] = ()

    @property
    def rate(self) -> float:
        return self.acked / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @staticmethod
    def combine(parts: list[FleetResult]) -> FleetResult:
        return FleetResult(
            published=sum(p.published for p in parts),
            acked=sum(p.acked for p in parts),
            elapsed_s=max((p.elapsed_s for p in parts), default=0.0),
            max_lag_s=max((p.max_lag_s for p in parts), default=0.0),
            errors=tuple(e for p in parts for e in p.errors),
        )


def lanes(spec: FleetSpec) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    rng = random.Random(spec.seed)
    return [tuple(rng.sample(HUBS, 2)) for _ in range(spec.lanes)]  # type: ignore[misc]


def _stopped(stop: object | None) -> bool:
    """`stop` is set, or this is a child process whose parent has gone."""
    parent = mp.parent_process()
    if parent is not None and not parent.is_alive():
        return True
    return stop is not None and stop.is_set()  # type: ignore[attr-defined]


def run_slice(spec: FleetSpec, first: int, last: int, url: str, stop: object | None = None,
              wall_start: float | None = None) -> FleetResult:
    """Publish for loggers [first, last) until the duration ends or `stop` (an Event) is set."""
    rng = random.Random(spec.seed * 1_000_003 + first)
    lane_list = lanes(spec)
    n = last - first
    ids = [spec.logger_id(i) for i in range(first, last)]
    topics = [telemetry_topic(spec.prefix, lid) for lid in ids]
    lane_of = [lane_list[i % spec.lanes] for i in range(first, last)]
    cls = [CLASSES[i % len(CLASSES)] for i in range(first, last)]
    # Spread the fleet evenly over one interval so the rate is smooth, not a burst per interval.
    phase = [((first + j) / spec.loggers) * spec.interval_s for j in range(n)]
    start_offset = [rng.uniform(0.0, 1.0) for _ in range(n)]
    seq = [0] * n
    wall0 = time.time() if wall_start is None else wall_start
    mono0 = time.monotonic() - (time.time() - wall0)
    end = None if spec.duration_s is None else mono0 + spec.duration_s
    max_lag = 0.0
    errors: list[str] = []
    pub = spec.publisher.for_fleet(url, f"{spec.id_prefix}-pub-{first}-{os.getpid()}")
    try:
        pub.connect()
    except PublishError as exc:
        return FleetResult(0, 0, 0.0, 0.0, (str(exc),))
    gauss = rng.gauss
    try:
        k = 0
        while True:
            base = k * spec.interval_s
            for j in range(n):
                due = mono0 + base + phase[j]
                if end is not None and due >= end:
                    raise StopIteration
                now = time.monotonic()
                # Behind schedule it never sleeps: look at `stop` every 1024 sends too.
                if (due > now or not j & 1023) and _stopped(stop):
                    raise StopIteration
                if due > now:
                    pub.idle()
                    time.sleep(due - now)
                elif now - due > max_lag:
                    max_lag = now - due
                (a_lat, a_lon), (b_lat, b_lon) = lane_of[j]
                f = (start_offset[j] + (base + phase[j]) / (LANE_HOURS * 3600.0)) % 1.0
                steady, noise = cls[j]
                seq[j] += 1
                ts = int(wall0 + base + phase[j])
                temp = steady + gauss(0.0, noise)
                lat, lon = a_lat + (b_lat - a_lat) * f, a_lon + (b_lon - a_lon) * f
                payload = (f'{{"ts":{ts},"temp_c":{temp:.1f},"seq":{seq[j]},"lat":{lat:.5f},'
                           f'"lon":{lon:.5f},"battery_pct":{90 - k % 50}}}')
                pub.publish(topics[j], payload)
            k += 1
    except (StopIteration, KeyboardInterrupt):
        pass  # the duration is over, or the operator stopped the fleet: report what was sent
    except PublishError as exc:
        errors.append(str(exc))
    try:
        pub.flush(timeout=30.0)
    except PublishError as exc:
        errors.append(str(exc))
    finally:
        pub.close()
    return FleetResult(pub.published, pub.acked, time.monotonic() - mono0, max_lag, tuple(errors))


def _child(spec: FleetSpec, first: int, last: int, url: str, stop: object, wall0: float,
           results: object) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into `stop`
    results.put(run_slice(spec, first, last, url, stop, wall0))  # type: ignore[attr-defined]


def run(spec: FleetSpec, url: str, stop: object | None = None) -> FleetResult:
    """Run the fleet in `spec.worker_count()` processes (one process: in this one)."""
    workers = spec.worker_count()
    wall0 = time.time() + 0.5  # a common start a little ahead, once the children are up
    if workers == 1:
        return run_slice(spec, 0, spec.loggers, url, stop, wall0)
    ctx = mp.get_context("spawn")
    stop_evt = ctx.Event()
    results = ctx.Queue()
    bounds = [round(i * spec.loggers / workers) for i in range(workers + 1)]
    procs = [
        ctx.Process(target=_child, args=(spec, bounds[i], bounds[i + 1], url, stop_evt, wall0,
                                         results), daemon=True)
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    previous = None
    if threading.current_thread() is threading.main_thread():
        # A terminated parent stops its children cleanly instead of orphaning them.
        previous = signal.signal(signal.SIGTERM, lambda *_: stop_evt.set())
    parts: list[FleetResult] = []
    try:
        while len(parts) < workers:
            if stop is not None and stop.is_set():  # type: ignore[attr-defined]
                stop_evt.set()
            try:
                parts.append(results.get(timeout=0.2))
            except queue.Empty:  # the children report once each
                if not any(p.is_alive() for p in procs) and results.empty():
                    break
            except KeyboardInterrupt:
                stop_evt.set()
    finally:
        stop_evt.set()
        for p in procs:
            p.join(timeout=35)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return FleetResult.combine(parts)
