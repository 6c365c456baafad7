"""Publishers and the load fleet against the real broker: QoS 1, bounded in-flight, nothing lost."""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
import pytest

from app.core.broker import BrokerAddress
from benchmarks.fastmqtt import FastPublisher
from simulators.fleet import FleetSpec, run_slice
from simulators.publisher import Publisher, PublishError


class Collector:
    """A paho subscriber gathering what the broker delivers under one topic prefix."""

    def __init__(self, url: str, prefix: str) -> None:
        self.prefix = prefix
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        addr = BrokerAddress.parse(url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"collector-{secrets.token_hex(3)}")
        self.client.on_connect = lambda c, *_: c.subscribe(f"{prefix}/#", qos=1)
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect(addr.host, addr.port)
        self.client.loop_start()
        assert self._ready.wait(10)

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload))

    def wait_for(self, count: int, timeout: float = 15.0) -> list[tuple[str, bytes]]:
        """What arrived once `count` messages have, and a marker sent after them came back: the
        broker delivers to one subscriber in order, so anything published earlier came first."""
        self._until(lambda: len(self.messages) >= count, timeout)
        marker = f"{self.prefix}/marker/{secrets.token_hex(4)}"
        self.client.publish(marker, b"", qos=1)
        self._until(lambda: any(topic == marker for topic, _ in self.messages), timeout)
        with self._lock:
            return [m for m in self.messages if m[0] != marker]

    def _until(self, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if check():
                    return
            time.sleep(0.01)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def prefix() -> str:
    return f"simtest-{secrets.token_hex(4)}/v1"


@pytest.fixture
def collector(mqtt_url, prefix):
    c = Collector(mqtt_url, prefix)
    yield c
    c.close()


def test_paho_publisher_keeps_in_flight_bounded_and_delivers_everything(mqtt_url, prefix,
                                                                        collector):
    pub = Publisher(mqtt_url, max_inflight=10).connect()
    peak = 0
    try:
        for i in range(500):
            pub.publish(f"{prefix}/loggers/L{i % 7}/telemetry", json.dumps({"i": i}))
            peak = max(peak, pub.in_flight)
        pub.flush()
    finally:
        pub.close()
    assert peak <= 10
    assert pub.acked == pub.published == 500
    got = collector.wait_for(500)
    assert sorted(json.loads(p)["i"] for _, p in got) == list(range(500))


def test_socket_publisher_pipelines_qos1_and_counts_acknowledgements(mqtt_url, prefix, collector):
    pub = FastPublisher(BrokerAddress.parse(mqtt_url), f"fast-{secrets.token_hex(3)}", window=50).connect()
    try:
        for i in range(3000):
            pub.publish(f"{prefix}/loggers/F{i % 11}/telemetry", b'{"i":%d}' % i)
            assert pub.published - pub.acked <= 50
        pub.publish(f"{prefix}/big", b"x" * 300_000)  # multi-byte remaining length
        pub.flush()
    finally:
        pub.close()
    got = collector.wait_for(3001)
    assert len(got) == 3001 and pub.acked == 3001
    assert sorted(json.loads(p)["i"] for t, p in got if "big" not in t) == list(range(3000))
    assert next(p for t, p in got if t.endswith("/big")) == b"x" * 300_000


def test_unreachable_broker_is_a_publish_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PublishError):
        FastPublisher(BrokerAddress.parse(f"mqtt://127.0.0.1:{port}"), "nobody").connect(timeout=2)
    with pytest.raises(PublishError):
        Publisher(f"mqtt://127.0.0.1:{port}").connect(timeout=2)


@pytest.mark.parametrize("publisher", [FastPublisher, Publisher])
def test_fleet_publishes_each_logger_on_its_interval(mqtt_url, prefix, collector, publisher):
    spec = FleetSpec(loggers=20, interval_s=0.25, duration_s=1.0, prefix=prefix,
                     publisher=publisher)
    result = run_slice(spec, 0, 20, mqtt_url)
    assert not result.errors
    assert result.acked == result.published == 80
    got = collector.wait_for(80)
    assert len(got) == 80
    by_logger: dict[str, list[int]] = {}
    for topic, payload in got:
        *_, logger, kind = topic.split("/")
        assert kind == "telemetry"
        body = json.loads(payload)
        assert set(body) == {"ts", "temp_c", "seq", "lat", "lon", "battery_pct"}
        by_logger.setdefault(logger, []).append(body["seq"])
    assert len(by_logger) == 20
    assert all(sorted(seqs) == [1, 2, 3, 4] for seqs in by_logger.values())


def test_fleet_spec_validation_and_process_count():
    assert FleetSpec(loggers=100, interval_s=1).worker_count() == 1
    paced = FleetSpec(loggers=60_000, interval_s=1, processes=0)  # 60 000 msg/s asked
    assert paced.worker_count() == min(5, os.cpu_count() or 1)  # paho: 12 000 a process
    fast = FleetSpec(loggers=60_000, interval_s=1, publisher=FastPublisher)
    assert fast.worker_count() == min(2, os.cpu_count() or 1)
    assert FleetSpec(loggers=10, interval_s=1, processes=4).worker_count() == 4
    assert FleetSpec(loggers=10, interval_s=1).logger_id(7) == "fleet-000007"
    for bad in ({"loggers": 0, "interval_s": 1}, {"loggers": 1, "interval_s": 0},
                {"loggers": 1, "interval_s": 1, "lanes": 0}):
        with pytest.raises(ValueError):
            FleetSpec(**bad)
