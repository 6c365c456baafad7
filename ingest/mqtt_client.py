"""paho-mqtt's client with this service's receive path and a keepalive that survives a pause.

The only module that uses paho's private names. paho is pinned exactly (pyproject.toml) and
tests/unit/test_paho_internals.py fails when a name used here disappears or one of ours
shadows paho's. paho's supported path (on_message into the inbox, `client.ack(mid, qos)` per
message, the same external loop) measured 0.45–0.78× this one's rate, with 2.5–3× its CPU per
message (`benchmarks/ingest.py --contenders worker,worker-paho`, README "Benchmarks").
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.exception import MalformedPacket

from ingest.batch import REJECTED_PAYLOAD_MAX
from ingest.payload import MAX_PAYLOAD_BYTES
from ingest.wire import decode_publish, publish_header, varint

if TYPE_CHECKING:
    from paho.mqtt.client import _InPacket  # paho's own type of the packet being read

RECV_SIZE = 256 * 1024
_PUBACK = 0x40

Sink = Callable[[bytes, bytes, int], None]  # (topic, payload, packet id)
OversizedSink = Callable[[bytes, bytes, int, int, bytes], None]  # (topic, head, id, size, sha256)


def _fresh_packet() -> _InPacket:
    return {"command": 0, "have_remaining": 0, "remaining_count": [], "remaining_mult": 1,
            "remaining_length": 0, "packet": bytearray(b""), "to_process": 0, "pos": 0}


def _is_publish_qos01(header: int) -> bool:
    return header & 0xF0 == 0x30 and header & 0x06 != 0x04


class _Stream:
    """The payload of an oversized PUBLISH as it arrives: hashed, its head kept, the rest dropped."""

    __slots__ = ("head", "left", "mid", "sha", "size", "topic")

    def __init__(self, topic: bytes, mid: int, size: int) -> None:
        self.topic, self.mid, self.size, self.left = topic, mid, size, size
        self.head = bytearray()
        self.sha = hashlib.sha256()

    def feed(self, buf: bytes, pos: int) -> int:
        end = min(len(buf), pos + self.left)
        chunk = memoryview(buf)[pos:end]
        self.sha.update(chunk)
        room = REJECTED_PAYLOAD_MAX - len(self.head)
        if room > 0:
            self.head += chunk[:room]
        self.left -= end - pos
        return end


class PahoClient(mqtt.Client):
    """paho's client whose receive path splits whole socket reads into packets.

    paho reads each packet with three recv calls and decodes a PUBLISH into MQTTMessage and MQTT 5
    Properties objects; here one recv of up to 256 KiB is split in place, PUBLISH (QoS 0/1) goes
    straight to the sink and every other packet to paho's own handlers (CONNACK, SUBACK, PINGRESP,
    DISCONNECT…), so paho keeps the protocol state. A PUBLISH whose payload is over the contract's
    1 MiB is streamed: hashed and cut to its head as it arrives, never held whole. Acknowledgements
    go out as one write per batch.
    """

    def __init__(self, *args: Any, sink: Sink, oversized_sink: OversizedSink, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cc_sink = sink
        self._cc_oversized = oversized_sink
        self._cc_rest = b""  # the start of a packet not yet complete, or packets held while paused
        self._cc_stream: _Stream | None = None
        self._cc_reading_since = 0.0
        self.reading_paused = False
        # QoS 2 (never granted: we subscribe with QoS 1) would still go through paho's own path.
        self.on_message = lambda _c, _u, m: sink(m._topic, bytes(m.payload), m.mid)

    # -- reading ------------------------------------------------------------------------------
    def reset_buffer(self) -> None:
        """A new connection: nothing half read, reading (and the keepalive clock) from now."""
        self._cc_rest = b""
        self._cc_stream = None
        self.resume_reading()

    def buffered(self) -> bool:
        return bool(self._cc_rest)

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False
        self._cc_reading_since = time.monotonic()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        while self._sock is not None and not self.reading_paused:
            data = b""
            try:
                data = self._sock_recv(RECV_SIZE)
            except BlockingIOError:
                pass
            except OSError:
                return self._loop_rc_handle(mqtt.MQTT_ERR_CONN_LOST)
            else:
                if not data:
                    return self._loop_rc_handle(mqtt.MQTT_ERR_CONN_LOST)
                with self._msgtime_mutex:
                    self._last_bytes_received = time.monotonic()
            buf = self._cc_rest + data if self._cc_rest else data
            rc, used = self._split(buf)
            self._cc_rest = buf[used:]
            if rc or self.reading_paused or not data:
                return rc
            pending = getattr(self._sock, "pending", None)  # TLS: decrypted bytes select misses
            if pending is None or not pending():
                return rc
        return mqtt.MQTT_ERR_SUCCESS if self._sock is not None else mqtt.MQTT_ERR_NO_CONN

    def _split(self, buf: bytes) -> tuple[MQTTErrorCode, int]:
        size, pos, sink = len(buf), 0, self._cc_sink
        v5 = self._protocol == mqtt.MQTTv5
        while pos < size and not self.reading_paused:
            stream = self._cc_stream
            if stream is not None:
                pos = stream.feed(buf, pos)
                if not stream.left:
                    self._cc_stream = None
                    self._cc_oversized(stream.topic, bytes(stream.head), stream.mid, stream.size,
                                       stream.sha.digest())
                continue
            header = buf[pos]
            try:
                length, body = varint(buf, pos + 1)  # the remaining length
            except IndexError:
                return mqtt.MQTT_ERR_SUCCESS, pos  # the fixed header is still arriving
            except ValueError:
                return self._loop_rc_handle(mqtt.MQTT_ERR_PROTOCOL), pos
            end = body + length
            if end > size:
                if length > MAX_PAYLOAD_BYTES and _is_publish_qos01(header):
                    try:
                        started = self._start_stream(header, buf, v5, body, end)
                    except ValueError:
                        return self._loop_rc_handle(mqtt.MQTT_ERR_PROTOCOL), pos
                    if started:
                        pos = started
                        continue
                return mqtt.MQTT_ERR_SUCCESS, pos
            if _is_publish_qos01(header):
                try:
                    topic, mid, payload = decode_publish(header, buf, v5, body, end)
                except (IndexError, ValueError):
                    return self._loop_rc_handle(mqtt.MQTT_ERR_PROTOCOL), end
                pos = end
                if topic:
                    sink(topic, payload, mid)
                    continue
            pos = end
            rc = self._paho_packet(header, buf[body:end], length)
            if rc:
                return self._loop_rc_handle(rc), pos
            if self._sock is None:
                break
        return mqtt.MQTT_ERR_SUCCESS, pos

    def _start_stream(self, header: int, buf: bytes, v5: bool, body: int, end: int) -> int:
        """Stream this PUBLISH if its payload is over the limit: the payload's offset, else 0."""
        try:
            topic, mid, start = publish_header(header, buf, v5, body, end)
        except IndexError:
            return 0  # its variable header is still arriving
        if end - start <= MAX_PAYLOAD_BYTES:
            return 0  # within the limit: read whole, judged by the parser
        self._cc_stream = _Stream(topic, mid, end - start)
        return start

    def _paho_packet(self, header: int, body: bytes, length: int) -> MQTTErrorCode:
        self._in_packet = {**_fresh_packet(), "command": header, "have_remaining": 1,
                           "remaining_length": length, "packet": bytearray(body)}
        try:
            return self._packet_handle()
        except MalformedPacket:
            return mqtt.MQTT_ERR_PROTOCOL
        finally:
            self._in_packet = _fresh_packet()

    # -- writing and the connection -----------------------------------------------------------
    def ack_many(self, mids: list[int]) -> None:
        """PUBACK each packet id, in the given order, as one write (4 bytes each)."""
        if mids:
            blob = struct.pack(f"!{len(mids)}I", *[0x40020000 | mid for mid in mids])
            self._packet_queue(_PUBACK, blob, 0, 0)

    def close_socket(self) -> None:
        self._sock_close()

    def tick(self, now: float) -> None:
        """The MQTT keepalive, in place of paho's loop_misc: `now` is time.monotonic().

        paho takes a PINGREQ unanswered for a keepalive period as a dead connection; while reading
        is paused its PINGRESP waits behind the messages not read yet, so paho would disconnect
        itself every period (and the broker then redelivers everything unacknowledged). Here a
        PINGREQ goes out whenever nothing was sent for a keepalive period (the broker needs a
        packet within 1.5 of them), and the connection counts as dead only after a keepalive
        period *of reading* without a byte from the broker and a PINGREQ unanswered that long.
        While paused, the PINGREQs themselves judge the broker: once it is gone its host answers
        one with a reset and the next write fails; once its host is gone, TCP_USER_TIMEOUT
        (MqttSource) fails the connection when they stay unacknowledged.
        """
        if self._sock is None or not self.is_connected():
            return
        keepalive = self._keepalive
        silent = not self.reading_paused and (
            now - max(self._last_bytes_received, self._cc_reading_since) >= keepalive)
        waiting = self._ping_t and now - self._ping_t < keepalive
        if silent and self._ping_t and not waiting:
            self._loop_rc_handle(mqtt.MQTT_ERR_KEEPALIVE)
            return
        if (silent or now - self._last_msg_out >= keepalive) and not waiting:
            self._send_pingreq()
