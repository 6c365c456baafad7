"""MQTT wire-format helpers without paho: broker URLs and the PUBLISH packet body."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(
            parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883), tls,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )


def decode_publish(
    header: int, packet: bytes | bytearray, v5: bool, start: int = 0, end: int | None = None
) -> tuple[bytes, int, bytes]:
    """(topic, packet id, payload) of a PUBLISH body (after the fixed header) in packet[start:end]."""
    end = len(packet) if end is None else end
    view = memoryview(packet)
    pos = start + 2 + ((packet[start] << 8) | packet[start + 1])
    topic = bytes(view[start + 2:pos])
    mid = 0
    if header & 0x06:
        mid = (packet[pos] << 8) | packet[pos + 1]
        pos += 2
    if v5:  # skip the properties: a variable byte integer length, then that many bytes
        length = shift = 0
        while True:
            byte = packet[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > 21:
                raise ValueError("malformed property length")
        pos += length
    if pos > end:
        raise ValueError("truncated PUBLISH")
    return topic, mid, bytes(view[pos:end])
