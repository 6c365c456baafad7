"""MQTT transport on the asyncio loop: paho-mqtt, persistent session, acks after commit.

With ingest/mqtt_client.py the only module that imports paho. The event loop owns the client
(paho is not thread-safe): its socket is watched with add_reader/add_writer, only the blocking
TCP connect runs in a thread. The receive path is mqtt_client.PahoClient's packet splitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from app.core.broker import BrokerAddress
from app.core.waiting import wait_any
from ingest import metrics
from ingest.batch import Delivery, Message, Oversized
from ingest.inbox import Inbox
from ingest.mqtt_client import PahoClient

log = logging.getLogger(__name__)
# A worker that is down keeps its broker session (and the messages queued for it) this long.
SESSION_EXPIRY_S = 7 * 24 * 3600
CONNACK_TIMEOUT_S = 10.0
_delivery = tuple.__new__  # a Delivery without the NamedTuple's Python-level __new__ (per message)
# Receive Maximum: the broker never has more messages out to us than the buffer budget holds at
# this size each. A single reading is ~150 B, a store-and-forward batch of ~25 readings 4 KiB:
# the usual traffic is bounded by the broker's flow control, larger messages by the pause.
RECEIVE_MAXIMUM_MESSAGE_BYTES = 4096


def receive_maximum(buffer_bytes: int) -> int:
    return max(1, min(65535, buffer_bytes // RECEIVE_MAXIMUM_MESSAGE_BYTES))


class MqttSource:
    """Connection lifecycle, subscriptions in on_connect, a byte-bounded inbox, acks per connection."""

    client_class: type[PahoClient] = PahoClient

    def __init__(
        self, url: str, *, client_id: str, topics: list[str], group: str | None, buffer_bytes: int,
        keepalive_s: int = 30,
    ) -> None:
        self.address = BrokerAddress.parse(url)
        self.client_id = client_id
        self.topics = topics
        self.group = group
        self.keepalive_s = keepalive_s
        self.inbox = Inbox(buffer_bytes, self._pause, self._resume)
        self.generation = 0
        self._v5 = True
        self._client: PahoClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: Any = None
        self._opening = False
        self._now = 0.0
        self._loop_thread: int | None = None
        self._lost = asyncio.Event()
        self._acknowledged = False  # a successful CONNACK arrived on the current connection
        self._answered = False  # any CONNACK arrived on the current connection
        self._v5_worked = False
        self._unanswered = 0  # connections closed before any CONNACK, in a row
        self.connected = asyncio.Event()
        self.subscribed = asyncio.Event()

    # -- the consumer side -------------------------------------------------------------------
    def ack(self, deliveries: list[Message]) -> int:
        """Acknowledge committed deliveries of the current connection, in arrival order.

        Packet ids are per connection: one from an earlier connection could now name another
        message, so those are left to the broker, which redelivers them (dedup absorbs them).
        """
        generation = self.generation
        mids = [d.mid for d in deliveries if d.generation == generation and d.mid]
        if mids and self._client is not None and self.connected.is_set():
            self._client.ack_many(mids)
            return len(mids)
        return 0

    # -- connection lifecycle ----------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected (reconnecting with backoff) until `stop`, then disconnect cleanly."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        misc = asyncio.create_task(self._misc_loop())
        delay = 0.2
        try:
            while not stop.is_set():
                self._lost.clear()
                self._acknowledged = self._answered = False
                try:
                    self._opening = True
                    await asyncio.to_thread(self._open)
                except (OSError, ssl.SSLError) as exc:
                    log.warning("MQTT broker %s:%s unreachable (%s); retrying in %.1fs",
                                self.address.host, self.address.port, exc, delay)
                    await wait_any(stop, within=delay)
                    delay = min(delay * 2, 10.0)
                    continue
                finally:
                    self._opening = False
                await wait_any(stop, self._lost, self.connected, within=CONNACK_TIMEOUT_S)
                if not (stop.is_set() or self._lost.is_set() or self.connected.is_set()):
                    log.warning("no CONNACK from the MQTT broker; reconnecting")
                    self._abort()
                await wait_any(stop, self._lost)
                if self._acknowledged:
                    delay = 0.2
                elif not stop.is_set():
                    await wait_any(stop, within=delay)
                    delay = min(delay * 2, 10.0)
        finally:
            misc.cancel()
            await self._disconnect()

    def _open(self) -> None:
        """Blocking TCP/TLS connect (in a worker thread); the loop owns the socket afterwards."""
        if self._client is None:
            self._client = self._new_client()
            client = self._client
            if self._v5:
                props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = SESSION_EXPIRY_S
                props.ReceiveMaximum = receive_maximum(self.inbox.budget)
                client.connect(self.address.host, self.address.port, self.keepalive_s,
                               clean_start=False, properties=props)
            else:
                client.connect(self.address.host, self.address.port, self.keepalive_s)
        else:
            self._client.reconnect()

    def _new_client(self) -> PahoClient:
        client = self.client_class(
            CallbackAPIVersion.VERSION2, client_id=self.client_id,
            protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311,
            clean_session=None if self._v5 else False, manual_ack=True, sink=self._on_publish,
            oversized_sink=self._on_oversized,
        )
        if self.address.tls:
            client.tls_set()
        if self.address.username:
            client.username_pw_set(self.address.username, self.address.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_socket_open = lambda _c, _u, sock: self._call(self._attach, sock)
        client.on_socket_close = lambda _c, _u, sock: self._call(self._detach, sock)
        client.on_socket_register_write = lambda _c, _u, sock: self._call(self._want_write, sock)
        client.on_socket_unregister_write = lambda _c, _u, sock: self._call(self._no_write, sock)
        return client

    def _call(self, fn: Any, *args: Any) -> None:
        """Run on the loop: now if we are on it, else scheduled (paho's connect runs in a thread)."""
        loop = self._loop
        assert loop is not None
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def _attach(self, sock: Any) -> None:
        assert self._loop is not None and self._client is not None
        self._client.reset_buffer()
        self._sock = sock
        # While reading is paused, a broker host that stops acknowledging our packets (PINGREQ,
        # PUBACK) ends the connection after this long instead of TCP's ~15 minutes.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, self.keepalive_s * 1000)
        self._loop.add_reader(sock, self._on_readable)

    def _detach(self, sock: Any) -> None:
        assert self._loop is not None
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)
        if self._sock is sock:
            self._sock = None

    def _want_write(self, sock: Any) -> None:
        assert self._loop is not None and self._client is not None
        if sock is self._sock or self._sock is None:
            self._loop.add_writer(sock, self._client.loop_write)

    def _no_write(self, sock: Any) -> None:
        assert self._loop is not None
        self._loop.remove_writer(sock)

    def _on_readable(self) -> None:
        self._now = time.time()
        if self._client is not None:
            self._client.loop_read()

    def _on_publish(self, topic: bytes, payload: bytes, mid: int) -> None:
        self.inbox.push(_delivery(Delivery, (topic, payload, mid, self.generation, self._now)))

    def _on_oversized(self, topic: bytes, head: bytes, mid: int, size: int, sha256: bytes) -> None:
        self.inbox.push(Oversized(topic, head, mid, self.generation, self._now, size, sha256))

    def _pause(self) -> None:
        if self._client is not None:
            self._client.pause_reading()
        if self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock)

    def _resume(self) -> None:
        if self._client is None or self._loop is None:
            return
        self._client.resume_reading()
        if self._sock is not None:
            self._loop.add_reader(self._sock, self._on_readable)
            if self._client.buffered():
                self._loop.call_soon(self._on_readable)

    def _on_connect(self, client: Any, _u: Any, flags: Any, reason: Any, _props: Any) -> None:
        self._answered = True
        if reason.is_failure:
            log.error("MQTT broker refused the connection: %s", reason)
            if self._v5 and reason == "Unsupported protocol version":
                self._downgrade()
            return
        self._acknowledged = True
        self._unanswered = 0
        self._v5_worked = self._v5_worked or self._v5
        filters = [f"$share/{self.group}/{t}" if self.group else t for t in self.topics]
        if self._v5:
            client.subscribe([(f, SubscribeOptions(qos=1)) for f in filters])
        else:
            client.subscribe([(f, 1) for f in filters])
        self.connected.set()
        metrics.CONNECTED.set(1)
        log.info("connected to MQTT %s:%s as %s (MQTT %s, session present: %s), subscribing %s",
                 self.address.host, self.address.port, self.client_id, "5" if self._v5 else "3.1.1",
                 flags.session_present, ", ".join(filters))

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, reasons: list[Any], _p: Any) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("MQTT subscription refused: %s", ", ".join(refused))
            return
        self.subscribed.set()
        log.info("subscribed (QoS %s)", ", ".join(str(r.value) for r in reasons))

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.generation += 1
        metrics.DISCONNECTS.inc()
        # Nothing received on that connection can be acknowledged any more: the broker resends it.
        self.inbox.clear()
        self.connected.clear()
        self.subscribed.clear()
        metrics.CONNECTED.set(0)
        if not self._answered:  # e.g. amqtt closes an MQTT 5 CONNECT without a word
            self._unanswered += 1
            if self._v5 and not self._v5_worked and self._unanswered >= 2:
                self._downgrade()
        self._lost.set()
        if str(reason) == "Session taken over":
            log.error("another ingest worker connected with client id %s: give each worker its own "
                      "COLDCHAIN_INGEST_CLIENT_ID", self.client_id)
        else:
            log.warning("disconnected from the MQTT broker: %s", reason)

    def _downgrade(self) -> None:
        # Brokers that speak only MQTT 3.1.1 here (amqtt) have no shared subscriptions either.
        log.warning("the broker refused MQTT 5: falling back to MQTT 3.1.1 without a shared "
                    "subscription group (run a single ingest worker)")
        self._v5 = False
        self.group = None
        old, self._client = self._client, None
        if old is not None:
            old.on_disconnect = None
            old.on_socket_close = None
            self._abort(old)

    def _abort(self, client: PahoClient | None = None) -> None:
        """Drop a connection that is going nowhere (no CONNACK, or a refused protocol)."""
        client = client or self._client
        if client is None:
            return
        sock = self._sock
        if sock is not None:
            self._detach(sock)
        client.close_socket()
        if client is self._client:
            self._on_disconnect(client, None, None, "no CONNACK", None)

    async def _misc_loop(self) -> None:
        period = min(1.0, self.keepalive_s / 8)
        while True:
            await asyncio.sleep(period)
            if self._client is not None and not self._opening and self._sock is not None:
                self._client.tick(time.monotonic())

    async def _disconnect(self) -> None:
        client = self._client
        if client is None or not self.connected.is_set():
            return
        client.disconnect()  # the session (and its queued messages) stays for SESSION_EXPIRY_S
        try:
            await asyncio.wait_for(self._lost.wait(), 2.0)
        except TimeoutError:
            log.warning("the broker did not close the connection after DISCONNECT")


