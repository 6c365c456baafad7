"""MQTT wire format without paho: variable byte integers and the PUBLISH packet body."""

from __future__ import annotations


def varint(packet: bytes | bytearray, pos: int) -> tuple[int, int]:
    """An MQTT variable byte integer at `pos`: (value, the position after it).

    IndexError: not all of it is in `packet` yet; ValueError: longer than MQTT's four bytes.
    """
    value = shift = 0
    while True:
        byte = packet[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            raise ValueError("malformed variable byte integer")


def publish_header(
    header: int, packet: bytes | bytearray, v5: bool, start: int, end: int
) -> tuple[bytes, int, int]:
    """(topic, packet id, payload offset) of a PUBLISH whose body is packet[start:end].

    IndexError: the variable header is not all in `packet` yet (a packet still arriving);
    ValueError: it runs past `end` (a malformed packet).
    """
    pos = start + 2 + ((packet[start] << 8) | packet[start + 1])
    if pos > len(packet):
        raise IndexError("topic not complete")
    topic = bytes(memoryview(packet)[start + 2:pos])
    mid = 0
    if header & 0x06:
        mid = (packet[pos] << 8) | packet[pos + 1]
        pos += 2
    if v5:  # skip the properties: a variable byte integer length, then that many bytes
        length, pos = varint(packet, pos)
        pos += length
    if pos > end:
        raise ValueError("truncated PUBLISH")
    if pos > len(packet):
        raise IndexError("properties not complete")
    return topic, mid, pos


def decode_publish(
    header: int, packet: bytes | bytearray, v5: bool, start: int = 0, end: int | None = None
) -> tuple[bytes, int, bytes]:
    """(topic, packet id, payload) of a PUBLISH body (after the fixed header) in packet[start:end]."""
    end = len(packet) if end is None else end
    topic, mid, pos = publish_header(header, packet, v5, start, end)
    return topic, mid, bytes(memoryview(packet)[pos:end])
