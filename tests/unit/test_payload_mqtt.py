"""The lean PUBLISH decoder agrees with paho's own on every packet; PUBACK batching is well formed."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt import _packet
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.wire import decode_publish

# MQTT strings may hold neither NUL, U+FEFF nor surrogates.
MQTT_TEXT = st.characters(blacklist_characters="\x00\ufeff", blacklist_categories=("Cs",))


def _publish_body(topic: bytes, qos: int, mid: int, payload: bytes, props: Properties | None) -> bytes:
    body = struct.pack("!H", len(topic)) + topic
    if qos:
        body += struct.pack("!H", mid)
    if props is not None:
        body += props.pack()
    return body + payload


@given(
    topic=st.binary(min_size=1, max_size=80),
    qos=st.sampled_from([0, 1]),
    mid=st.integers(1, 65535),
    payload=st.binary(max_size=3000),
    v5=st.booleans(),
    user=st.lists(st.tuples(st.text(MQTT_TEXT, max_size=10), st.text(MQTT_TEXT, max_size=300)),
                  max_size=3),
    expiry=st.none() | st.integers(0, 2**32 - 1),
)
@settings(max_examples=300)
def test_decoder_matches_paho(
    topic: bytes, qos: int, mid: int, payload: bytes, v5: bool,
    user: list[tuple[str, str]], expiry: int | None,
) -> None:
    props = None
    if v5:
        props = Properties(PacketTypes.PUBLISH)
        if user:
            props.UserProperty = user
        if expiry is not None:
            props.MessageExpiryInterval = expiry
    header = 0x30 | (qos << 1)
    body = _publish_body(topic, qos, mid, payload, props)
    protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
    expected = _packet.decode_publish(header, bytearray(body), protocol)
    want = (expected.topic, expected.mid if qos else 0, expected.payload)
    assert decode_publish(header, bytearray(body), v5) == want
    framed = b"\x30\x7f" + body + b"\x40\x02\x00\x01"  # inside a stream of packets
    assert decode_publish(header, framed, v5, 2, 2 + len(body)) == want


@pytest.mark.parametrize("body", [b"", b"\x00", b"\x00\x05ab", b"\x00\x01a\x00"])
def test_truncated_packets_raise(body: bytes) -> None:
    with pytest.raises((IndexError, ValueError)):
        decode_publish(0x32, bytearray(body), True)
