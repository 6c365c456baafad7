"""ingest/mqtt_client.py drives paho's internals: this fails when paho drops, renames or reshapes one.

Every `._private` attribute in that module is found by reading its source, so a name used
tomorrow is checked without editing this test. Upgrading paho: run this, then
`benchmarks/ingest.py --contenders worker,worker-paho` (README, "Benchmarks").
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import paho.mqtt.client as mqtt

from ingest import mqtt_client
from ingest.mqtt_client import PahoClient

SOURCE = ast.parse(Path(mqtt_client.__file__).read_text())


def _ours(*classes: str) -> set[str]:
    """Attributes and methods that the module's own classes (or the ones named) define."""
    names: set[str] = set()
    for cls in (n for n in SOURCE.body if isinstance(n, ast.ClassDef)):
        if classes and cls.name not in classes:
            continue
        for node in ast.walk(cls):
            if isinstance(node, ast.FunctionDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
    return names


def _private_calls() -> dict[str, set[int]]:
    """paho's private names used, with the positional argument counts of the calls made to them."""
    ours = _ours() - {"_in_packet", "_last_bytes_received"}  # paho's, assigned by us too
    used: dict[str, set[int]] = {}
    calls = {id(n.func): len(n.args) for n in ast.walk(SOURCE) if isinstance(n, ast.Call)}
    for node in ast.walk(SOURCE):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__") and node.attr not in ours):
            used.setdefault(node.attr, set())
            if id(node) in calls:
                used[node.attr].add(calls[id(node)])
    return used


def client() -> PahoClient:
    return PahoClient(mqtt.CallbackAPIVersion.VERSION2, client_id="x", manual_ack=True,
                      protocol=mqtt.MQTTv5, sink=lambda *a: None, oversized_sink=lambda *a: None)


def test_every_private_name_used_exists_in_this_paho() -> None:
    used = _private_calls()
    assert {"_sock", "_sock_recv", "_packet_handle", "_in_packet", "_packet_queue", "_ping_t",
            "_send_pingreq", "_loop_rc_handle", "_last_msg_out", "_topic"} <= set(used)
    instance, message = client(), mqtt.MQTTMessage(mid=1, topic=b"t")
    missing = [name for name in sorted(used) if not (hasattr(instance, name) or hasattr(message, name))]
    assert missing == []


def test_private_methods_take_the_arguments_they_are_given() -> None:
    for name, counts in sorted(_private_calls().items()):
        method = getattr(mqtt.Client, name, None)
        if not callable(method):
            continue
        for count in counts:
            inspect.signature(method).bind(None, *[None] * count)  # raises TypeError if not


def test_the_incoming_packet_state_has_the_shape_we_rebuild() -> None:
    plain = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    assert set(plain._in_packet) == set(mqtt_client._fresh_packet())
    assert isinstance(plain._ping_t, float) and isinstance(plain._keepalive, int)


def test_our_own_names_do_not_shadow_pahos() -> None:
    plain = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    overrides = {"loop_read", "__init__", "_in_packet", "_last_bytes_received", "on_message"}
    shadowed = [n for n in sorted(_ours("PahoClient") - overrides) if hasattr(plain, n)]
    assert shadowed == []
