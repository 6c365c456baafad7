"""The receive path over a real socket: packets split across any reads, oversized payloads streamed."""

from __future__ import annotations

import hashlib
import random
import socket
import struct
from collections.abc import Iterator

import paho.mqtt.client as mqtt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.batch import REJECTED_PAYLOAD_MAX
from ingest.mqtt_client import PahoClient
from ingest.payload import MAX_PAYLOAD_BYTES

SIZES = st.one_of(st.integers(0, 3000), st.sampled_from([MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES + 1]),
                  st.integers(MAX_PAYLOAD_BYTES + 1, MAX_PAYLOAD_BYTES * 3 // 2))


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(topic: bytes, mid: int, payload: bytes, v5: bool) -> bytes:
    body = struct.pack("!H", len(topic)) + topic + struct.pack("!H", mid)
    if v5:
        body += b"\x02\x01\x01"  # properties (2 bytes): Payload Format Indicator = 1
    return b"\x32" + varint(len(body) + len(payload)) + body + payload


class Wire:
    """A PahoClient reading the far end of a socketpair, and what reached its sinks."""

    def __init__(self, v5: bool) -> None:
        self.client = PahoClient(
            mqtt.CallbackAPIVersion.VERSION2, client_id="t", manual_ack=True,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            sink=lambda t, p, m: self.got.append((t, m, len(p), hashlib.sha256(p).digest(), p[:8])),
            oversized_sink=lambda t, h, m, n, sha: self.got.append((t, m, n, sha, h)),
        )
        self.got: list[tuple[object, ...]] = []
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.client._sock = self.reader

    def send(self, chunks: Iterator[bytes]) -> None:
        for chunk in chunks:
            self.writer.sendall(chunk)
            assert self.client.loop_read() == mqtt.MQTT_ERR_SUCCESS

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


@given(sizes=st.lists(SIZES, min_size=1, max_size=4), v5=st.booleans(),
       cut=st.integers(1, 9) | st.integers(1000, 70_000), seed=st.integers(0, 2**32))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_message_arrives_once_whole_or_as_its_streamed_head(
    sizes: list[int], v5: bool, cut: int, seed: int
) -> None:
    rng = random.Random(seed)
    if cut < 10:  # byte by byte through headers and boundaries, but not through a whole MiB
        sizes = [min(n, 3000) for n in sizes]
    payloads = [rng.randbytes(n) for n in sizes]
    stream = b"".join(publish(b"cc/loggers/L%d/telemetry" % i, i + 1, p, v5)
                      for i, p in enumerate(payloads))
    wire = Wire(v5)
    try:
        wire.send(stream[i:i + cut] for i in range(0, len(stream), cut))
    finally:
        wire.close()
    expected: list[tuple[object, ...]] = []
    for i, p in enumerate(payloads):
        topic, sha = b"cc/loggers/L%d/telemetry" % i, hashlib.sha256(p).digest()
        if len(p) > MAX_PAYLOAD_BYTES:  # streamed: its head only, never the whole body
            expected.append((topic, i + 1, len(p), sha, p[:REJECTED_PAYLOAD_MAX]))
        else:
            expected.append((topic, i + 1, len(p), sha, p[:8]))
    assert wire.got == expected
    assert not wire.client.buffered()


def test_a_paused_reader_reads_nothing_and_keeps_what_it_had() -> None:
    wire = Wire(v5=True)
    try:
        packets = [publish(b"t/%d" % i, i + 1, b"x" * 100, True) for i in range(3)]
        wire.client.pause_reading()
        wire.writer.sendall(b"".join(packets))
        assert wire.client.loop_read() == mqtt.MQTT_ERR_SUCCESS and wire.got == []
        wire.client.resume_reading()
        wire.client.loop_read()
        assert [g[1] for g in wire.got] == [1, 2, 3]
    finally:
        wire.close()
