"""A minimal MQTT 3.1.1 QoS 1 publisher on a plain socket, for load generation only.

A development tool, not part of the installed package: `benchmarks/fleet.py` drives the simulator
fleet with it (`FleetSpec(publisher=FastPublisher)`); `coldchain simulate fleet` uses paho.


paho costs 40–65 µs per message in Python (PITFALLS.md); load generation needs a few µs. This
speaks only what a publisher needs — CONNECT, PUBLISH (QoS 1), PUBACK, PINGREQ, DISCONNECT —
pipelines writes, and keeps at most `window` messages unacknowledged (packet ids are 16-bit).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import time

from app.core.broker import BrokerAddress
from simulators.publisher import PublishError


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: bytes) -> bytes:
    return struct.pack("!H", len(s)) + s


class FastPublisher:
    # Messages per second one process sustains (measured here: ~60 000; the fleet plans with less).
    RATE_PER_PROCESS = 40_000

    @classmethod
    def for_fleet(cls, url: str, client_id: str) -> FastPublisher:
        return cls(BrokerAddress.parse(url), client_id)

    def __init__(self, address: BrokerAddress, client_id: str, *, window: int = 1000,
                 keepalive: int = 60) -> None:
        if not 0 < window < 65_535:
            raise ValueError("window must be between 1 and 65 534")
        self.address = address
        self.client_id = client_id
        self.window = window
        self.keepalive = keepalive
        self.published = 0
        self.acked = 0
        self._pid = 0
        self._out = bytearray()
        self._in = bytearray()
        self._sock: socket.socket | None = None
        self._last_send = time.monotonic()

    def connect(self, timeout: float = 10.0) -> FastPublisher:
        a = self.address
        try:
            sock = socket.create_connection((a.host, a.port), timeout=timeout)
        except OSError as exc:
            raise PublishError(f"cannot reach the broker at {a.host}:{a.port}: {exc}") from exc
        if a.tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=a.host)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        flags = 0x02  # clean session
        payload = _str(self.client_id.encode())
        if a.username:
            flags |= 0x80
            payload += _str(a.username.encode())
            if a.password:
                flags |= 0x40
                payload += _str(a.password.encode())
        var = _str(b"MQTT") + bytes([4, flags]) + struct.pack("!H", self.keepalive)
        body = var + payload
        sock.sendall(b"\x10" + _varint(len(body)) + body)
        connack = self._recv_exact(sock, 4)
        if connack[0] != 0x20 or connack[3] != 0:
            sock.close()
            raise PublishError(f"broker refused the connection (CONNACK {connack.hex()})")
        sock.settimeout(timeout)
        self._sock = sock
        return self

    @staticmethod
    def _recv_exact(sock: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise PublishError("the broker closed the connection")
            buf += chunk
        return buf

    def publish(self, topic: str, payload: bytes | str) -> None:
        if isinstance(payload, str):
            payload = payload.encode()
        self._pid = self._pid % 65_535 + 1
        t = topic.encode()
        body_len = 2 + len(t) + 2 + len(payload)
        self._out += (b"\x32" + _varint(body_len) + struct.pack("!H", len(t)) + t
                      + struct.pack("!H", self._pid) + payload)
        self.published += 1
        if len(self._out) >= 32_768:
            self._send()
        if self.published - self.acked >= self.window:
            self._send()
            while self.published - self.acked > self.window // 2:
                self._read_acks()

    def _send(self) -> None:
        if self._sock is None:
            raise PublishError("not connected")
        if self._out:
            try:
                self._sock.sendall(self._out)
            except OSError as exc:
                raise PublishError(f"lost the broker: {exc}") from exc
            self._out.clear()
            self._last_send = time.monotonic()

    def _read_acks(self) -> None:
        assert self._sock is not None
        try:
            data = self._sock.recv(65_536)
        except TimeoutError as exc:
            raise PublishError("no acknowledgement from the broker in time") from exc
        except OSError as exc:
            raise PublishError(f"lost the broker: {exc}") from exc
        if not data:
            raise PublishError("the broker closed the connection")
        buf = self._in
        buf += data
        i = 0
        while len(buf) - i >= 2:
            kind, length = buf[i] & 0xF0, buf[i + 1]  # PUBACK and PINGRESP: one-byte lengths
            if len(buf) - i < 2 + length:
                break
            if kind == 0x40:
                self.acked += 1
            elif kind != 0xD0:
                raise PublishError(f"unexpected packet type {kind >> 4} from the broker")
            i += 2 + length
        del buf[:i]

    def idle(self) -> None:
        """Call when not publishing for a while: flushes and keeps the connection alive."""
        self._send()
        if time.monotonic() - self._last_send > self.keepalive / 2:
            self._out += b"\xc0\x00"
            self._send()

    def flush(self, timeout: float = 30.0) -> None:
        self._send()
        deadline = time.monotonic() + timeout
        while self.acked < self.published:
            if time.monotonic() > deadline:
                raise PublishError(f"{self.published - self.acked} messages unacknowledged")
            self._read_acks()

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.sendall(b"\xe0\x00")
            self._sock.close()
            self._sock = None
