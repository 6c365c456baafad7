"""MQTT publisher for simulated loggers: paho 2.x, QoS 1, throttled on acknowledgements."""

from __future__ import annotations

import logging
import secrets
import ssl
import threading
import time

import paho.mqtt.client as mqtt

from app.core.broker import BrokerAddress

log = logging.getLogger(__name__)

# paho loses QoS 1 messages beyond 65 535 outstanding ids and rescans its outstanding set on
# every PUBACK: keep about a hundred in flight (PITFALLS.md).
DEFAULT_MAX_INFLIGHT = 100


def telemetry_topic(prefix: str, logger_id: str) -> str:
    return f"{prefix}/loggers/{logger_id}/telemetry"


def status_topic(prefix: str, logger_id: str) -> str:
    return f"{prefix}/loggers/{logger_id}/status"


class PublishError(RuntimeError):
    """The broker could not be reached or did not acknowledge in time."""


class Publisher:
    """One MQTT connection. `publish` blocks while `max_inflight` messages await their PUBACK.

    Used from one thread (paho is not fully thread-safe); paho's network loop runs in its own.
    """

    # Messages per second one process sustains (measured here: ~15 000; the fleet plans with less).
    RATE_PER_PROCESS = 12_000

    @classmethod
    def for_fleet(cls, url: str, client_id: str) -> Publisher:
        return cls(url, client_id=client_id)

    def __init__(self, url: str, *, client_id: str | None = None,
                 max_inflight: int = DEFAULT_MAX_INFLIGHT, qos: int = 1) -> None:
        self.address = BrokerAddress.parse(url)
        self.qos = qos
        self.max_inflight = max_inflight
        self.published = 0
        self.acked = 0
        self._cond = threading.Condition()
        self._connected = threading.Event()
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"coldchain-sim-{secrets.token_hex(4)}",
            protocol=mqtt.MQTTv311,
        )
        self._client.max_inflight_messages_set(max_inflight)
        self._client.max_queued_messages_set(0)
        if self.address.username:
            self._client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            self._client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish

    # paho callbacks (network thread): O(1), only bookkeeping.
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker refused the connection: %s", reason_code)
            return
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if reason_code.is_failure:
            log.warning("disconnected from the broker: %s (paho reconnects)", reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._cond:
            self.acked += 1
            self._cond.notify()

    def connect(self, timeout: float = 10.0) -> Publisher:
        self._client.reconnect_delay_set(0.2, 5)
        try:
            self._client.connect(self.address.host, self.address.port, keepalive=30)
        except OSError as exc:
            raise PublishError(f"cannot reach the broker at {self.address.host}:"
                               f"{self.address.port}: {exc}") from exc
        self._client.loop_start()
        if not self._connected.wait(timeout):
            self.close()
            raise PublishError("the broker did not accept the connection in time")
        return self

    @property
    def in_flight(self) -> int:
        return self.published - self.acked

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False,
                timeout: float = 30.0) -> None:
        with self._cond:
            if self.published - self.acked >= self.max_inflight and not self._cond.wait_for(
                    lambda: self.published - self.acked < self.max_inflight, timeout):
                raise PublishError(f"no acknowledgement from the broker for {timeout:.0f} s")
            self.published += 1
        info = self._client.publish(topic, payload, qos=self.qos, retain=retain)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            raise PublishError("paho's queue is full")

    def idle(self) -> None:
        """Nothing to do between publishes: paho's network thread keeps the connection alive."""

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every published message is acknowledged."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.acked >= self.published, timeout):
                raise PublishError(f"{self.published - self.acked} messages still unacknowledged")

    def close(self) -> None:
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()

    def __enter__(self) -> Publisher:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_until(deadline: float) -> None:
    """Sleep until a `time.monotonic()` deadline (no-op when it has passed)."""
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)
