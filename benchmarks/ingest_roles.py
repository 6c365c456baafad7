"""The processes of benchmarks/ingest.py: the publisher and the three subscribers it compares.

    python benchmarks/ingest_roles.py publish|worker|yardstick|naive --json '<args>'

Each subscriber prints READY once subscribed, then one JSON line with its figures when it has
committed `expect` readings. Latency is commit time minus the reading's `ts`, which the publisher
sets to the moment it hands the line to mosquitto_pub.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402
import orjson  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
import psutil  # noqa: E402

from app.core.broker import BrokerAddress  # noqa: E402

SAMPLE_EVERY = 16  # latency sample: every 16th committed reading
CHUNK = 50_000  # mosquitto_pub -l loses lines past ~65 k (PITFALLS)
BARE = """CREATE TABLE IF NOT EXISTS bench_bare (logger_id text, ts timestamptz, temp_c float8,
    lat float8, lon float8, battery_pct float8, seq bigint, received_at timestamptz)"""
BARE_COLUMNS = ("logger_id", "ts", "temp_c", "lat", "lon", "battery_pct", "seq", "received_at")


class Stats:
    def __init__(self, expect: int) -> None:
        self.expect, self.count, self.first, self.last = expect, 0, 0.0, 0.0
        self.latencies: list[float] = []

    def commit(self, readings: int, sample: list[datetime]) -> bool:
        now = time.time()
        self.first = self.first or now
        self.count, self.last = self.count + readings, now
        self.latencies.extend(now - ts.timestamp() for ts in sample)
        return self.count >= self.expect

    def report(self, backend_cpu: float) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(json.dumps({
            "count": self.count, "first_commit": self.first, "last_commit": self.last,
            "latencies": self.latencies, "cpu_user": usage.ru_utime, "cpu_sys": usage.ru_stime,
            "max_rss_mb": usage.ru_maxrss / 1024, "backend_cpu": backend_cpu,
        }), flush=True)


async def backend_cpu(conn: asyncpg.Connection, application: str) -> float:
    pids = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE application_name = $1"
                            " AND datname = current_database()", application)
    total = 0.0
    for (pid,) in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


# -- the service's worker -----------------------------------------------------------------------
def public_api_source() -> type:
    """MqttSource on paho's supported receive path (issue 13, item 8): the measure against which
    ingest/mqtt_client.py's own packet splitter is kept. paho reads each packet (three recv
    calls, an MQTTMessage and MQTT 5 Properties) and calls on_message; every PUBACK is its own
    `client.ack(mid, 1)`; the socket runs on the asyncio loop through the external-loop API, and
    loop_misc keeps paho's own keepalive (which a long pause would break: fine for a benchmark).
    """
    from ingest.mqtt import MqttSource

    class PublicApiClient(mqtt.Client):
        def __init__(self, *args: Any, sink: Any, oversized_sink: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.reading_paused = False
            self.delivered = 0

        def reset_buffer(self) -> None:
            self.reading_paused = False

        def buffered(self) -> bool:
            return False

        def pause_reading(self) -> None:
            self.reading_paused = True

        def resume_reading(self) -> None:
            self.reading_paused = False

        def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
            # paho's loop_read reads one packet per call: keep going while messages come.
            rc = mqtt.MQTT_ERR_SUCCESS
            for _ in range(1000):
                seen = self.delivered
                rc = super().loop_read()
                if rc or self.reading_paused or self.delivered == seen:
                    break
            return rc

        def ack_many(self, mids: list[int]) -> None:
            for mid in mids:
                self.ack(mid, 1)

        def tick(self, _now: float) -> None:
            self.loop_misc()

        def close_socket(self) -> None:
            self.disconnect()

    class PublicApiSource(MqttSource):
        client_class = PublicApiClient  # type: ignore[assignment]

        def _new_client(self) -> Any:
            client = super()._new_client()

            def on_message(_c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
                client.delivered += 1
                try:
                    topic: Any = message.topic
                except UnicodeDecodeError:
                    topic = b"\xff"  # an invalid topic: quarantined as such
                self._on_publish(topic, message.payload, message.mid)

            client.on_message = on_message
            return client

    return PublicApiSource


async def run_worker(a: dict[str, Any]) -> None:
    """The service's worker; with expect = 0 it runs until SIGTERM (several share one group)."""
    import signal

    from app.core.settings import Settings
    from ingest import worker

    if a.get("receive") == "paho":
        worker.MqttSource = public_api_source()  # type: ignore[misc]

    settings = Settings(database_url=a["database_url"], mqtt_url=a["mqtt_url"],
                        topic_prefix=a["prefix"], ingest_group="bench",
                        ingest_client_id=f"bench-{a['prefix'].replace('/', '-')}-{a.get('index', 0)}")
    stats, stop, ready = Stats(a["expect"] or 2**62), asyncio.Event(), asyncio.Event()
    backends: list[psutil.Process] = []
    backend = [0.0]

    def finish() -> None:
        backend[0] = sum(cpu(p) for p in backends)  # while the worker's backend still lives
        stop.set()

    def on_commit(result: Any, batch: Any) -> None:
        if stats.commit(result.stored + result.duplicates,
                        [row.ts for row in batch.rows[::SAMPLE_EVERY]]):
            finish()

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, finish)
    task = asyncio.create_task(worker.run(settings, stop, on_commit=on_commit, ready=ready))
    await ready.wait()
    print("READY", flush=True)
    conn = await asyncpg.connect(a["database_url"])
    while len(backends) < worker.WRITERS and not stop.is_set():  # writers connect on first use
        known = {p.pid for p in backends}
        backends.extend(psutil.Process(pid) for (pid,) in await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'coldchain-ingest'"
            " AND datname = current_database() AND backend_start > now() - interval '1 hour'"
            " AND client_port = ANY($1::int[])", _my_ports()) if pid not in known)
        await asyncio.sleep(0.05)
    await conn.close()
    await task
    if os.environ.get("BENCH_DEBUG"):
        from ingest import metrics
        for m in (metrics.BATCH_MESSAGES, metrics.COMMIT_SECONDS):
            for sample in m.collect()[0].samples:
                print(sample.name, sample.labels, sample.value, file=sys.stderr)
    stats.report(backend[0])


def _my_ports() -> list[int]:
    """Local TCP ports of this process: tells our backend apart from other workers' ones."""
    return [c.laddr.port for c in psutil.Process().net_connections(kind="tcp") if c.laddr]


def cpu(proc: psutil.Process) -> float:
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


# -- bare paho (stock, threaded loop) + asyncpg ----------------------------------------------------
def _bare_client(a: dict[str, Any], inbox: deque[Any], ready: threading.Event) -> mqtt.Client:
    address = BrokerAddress.parse(a["mqtt_url"])
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bare-{os.getpid()}",
                         protocol=mqtt.MQTTv5, manual_ack=True)
    client.on_connect = lambda c, *_: c.subscribe(f"{a['prefix']}/loggers/+/telemetry", qos=1)
    client.on_subscribe = lambda *_: ready.set()
    client.on_message = lambda _c, _u, m: inbox.append((m.topic, m.payload, m.mid))
    client.connect(address.host, address.port, 30)
    client.loop_start()
    return client


def _bare_rows(topic: str, payload: bytes, received: datetime) -> list[tuple[Any, ...]]:
    doc = orjson.loads(payload)
    logger_id = topic.split("/")[-2]
    return [(logger_id, datetime.fromisoformat(r["ts"]), r["temp_c"], r.get("lat"), r.get("lon"),
             r.get("battery_pct"), r.get("seq"), received) for r in doc.get("readings", [doc])]


async def run_yardstick(a: dict[str, Any]) -> None:
    """The bare yardstick: stock paho subscriber, COPY into a bare table, ack after commit."""
    conn = await asyncpg.connect(a["database_url"],
                                 server_settings={"application_name": "bench-yardstick"})
    await conn.execute(BARE)
    inbox: deque[Any] = deque()
    ready = threading.Event()
    client = _bare_client(a, inbox, ready)
    await asyncio.to_thread(ready.wait)
    print("READY", flush=True)
    stats = Stats(a["expect"])
    while True:
        if not inbox:
            await asyncio.sleep(0.001)
            continue
        items = [inbox.popleft() for _ in range(len(inbox))]
        received = datetime.now(UTC)
        rows = [row for topic, payload, _ in items for row in _bare_rows(topic, payload, received)]
        async with conn.transaction():
            await conn.copy_records_to_table("bench_bare", records=rows, columns=BARE_COLUMNS)
        for _, _, mid in items:
            client.ack(mid, 1)
        if stats.commit(len(rows), [r[1] for r in rows[::SAMPLE_EVERY]]):
            break
    cpu = await backend_cpu(conn, "bench-yardstick")
    client.disconnect()
    client.loop_stop()
    await conn.close()
    stats.report(cpu)


async def run_naive(a: dict[str, Any]) -> None:
    """The naive baseline: one INSERT (and commit) per message, then its ack."""
    conn = await asyncpg.connect(a["database_url"], server_settings={"application_name": "bench-naive"})
    inbox: deque[Any] = deque()
    ready = threading.Event()
    client = _bare_client(a, inbox, ready)
    await asyncio.to_thread(ready.wait)
    print("READY", flush=True)
    stats = Stats(a["expect"])
    insert = ("INSERT INTO readings (logger_id, ts, temp_c, lat, lon, battery_pct, seq, received_at)"
              " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING")
    done = False
    while not done:
        if not inbox:
            await asyncio.sleep(0.001)
            continue
        topic, payload, mid = inbox.popleft()
        rows = _bare_rows(topic, payload, datetime.now(UTC))
        for row in rows:
            await conn.execute(insert, *row)
        client.ack(mid, 1)
        done = stats.commit(len(rows), [rows[0][1]] if stats.count % SAMPLE_EVERY == 0 else [])
    cpu = await backend_cpu(conn, "bench-naive")
    client.disconnect()
    client.loop_stop()
    await conn.close()
    stats.report(cpu)


# -- the publisher: mosquitto_pub -l per logger, fed lines stamped as they are written -----------
def _stamp(us: int, cache: dict[int, str]) -> str:
    second, fraction = divmod(us, 1_000_000)
    head = cache.get(second)
    if head is None:
        head = cache[second] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{head}.{fraction:06d}Z"


def _feed(a: dict[str, Any], logger_id: str, count: int, started: threading.Event) -> None:
    address = BrokerAddress.parse(a["mqtt_url"])
    per_message = a["readings_per_message"]
    per_second = a["rate"] / len(a["loggers"]) if a["rate"] else 0.0
    cache: dict[int, str] = {}
    last, seq, sent, begin = 0, 0, 0, time.time()
    while sent < count:
        chunk = min(CHUNK, count - sent)
        proc = subprocess.Popen(
            ["mosquitto_pub", "-h", address.host, "-p", str(address.port), "-q", "1", "-l",
             "-t", f"{a['prefix']}/loggers/{logger_id}/telemetry"], stdin=subprocess.PIPE)
        assert proc.stdin is not None
        done = 0
        while done < chunk:
            lines = []
            for _ in range(min(64, chunk - done)):
                readings = []
                for _ in range(per_message):
                    last = max(time.time_ns() // 1000, last + 1)  # unique per logger
                    readings.append(f'{{"ts": "{_stamp(last, cache)}", "temp_c": {4 + seq % 40 / 10:.2f}, '
                                    f'"seq": {seq}, "lat": 50.03, "lon": 8.57, "battery_pct": 87}}')
                    seq += 1
                lines.append(readings[0] if per_message == 1
                             else '{"readings": [' + ", ".join(readings) + "]}")
                done += 1
            started.set()
            proc.stdin.write(("\n".join(lines) + "\n").encode())
            if per_second:
                ahead = (sent + done) / per_second - (time.time() - begin)
                if ahead > 0:
                    time.sleep(ahead)
        proc.stdin.close()
        assert proc.wait() == 0
        sent += chunk


def run_publisher(a: dict[str, Any]) -> None:
    messages = a["messages"]
    loggers = a["loggers"]
    started = threading.Event()
    threads = [threading.Thread(target=_feed, args=(a, lg, messages // len(loggers), started))
               for lg in loggers]
    start = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"start": start, "end": time.time(), "feeder_cpu": me.ru_utime + me.ru_stime,
                      "mosquitto_pub_cpu": children.ru_utime + children.ru_stime}), flush=True)


def main() -> None:
    role, args = sys.argv[1], json.loads(sys.argv[2])
    if role == "publish":
        run_publisher(args)
        return
    if role == "worker-paho":
        args["receive"] = "paho"
    runner = {"worker": run_worker, "worker-paho": run_worker, "yardstick": run_yardstick,
              "naive": run_naive}[role]
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        cProfile.runctx("asyncio.run(runner(args))", globals(), locals(),
                        os.environ["BENCH_PROFILE"] + f".{role}")
        return
    asyncio.run(runner(args))


if __name__ == "__main__":
    main()
