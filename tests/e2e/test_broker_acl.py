"""The shipped broker configuration (docs/mosquitto.conf + docs/mosquitto.acl) on a real mosquitto:
no anonymous clients, each logger publishes only on its own topics, ingest reads them all."""

from __future__ import annotations

import queue
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from app.embedded import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
USERS = {"LOG-1": "pw-log-1", "LOG-2": "pw-log-2", "coldchain-ingest": "pw-ingest"}
TOPIC = "coldchain/v1/loggers/{}/telemetry"

pytestmark = pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="needs mosquitto")


def _config(tmp: Path, port: int) -> Path:
    """docs/mosquitto.conf as shipped, with this test's port and files in place of the container's."""
    replaced = {"listener": f"listener {port} 127.0.0.1", "password_file": f"password_file {tmp}/passwd",
                "acl_file": f"acl_file {DOCS / 'mosquitto.acl'}",
                "persistence_location": f"persistence_location {tmp}/"}
    lines = [replaced.get(line.split(" ", 1)[0], line)
             for line in (DOCS / "mosquitto.conf").read_text().splitlines()]
    conf = tmp / "mosquitto.conf"
    conf.write_text("\n".join([*lines, "user root"]) + "\n")  # the tests run as root
    return conf


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("acl")
    for i, (user, password) in enumerate(USERS.items()):
        create = ["-c"] if i == 0 else []
        subprocess.run(["mosquitto_passwd", *create, "-b", str(tmp / "passwd"), user, password],
                       check=True, capture_output=True)
    port = free_port()
    with (tmp / "broker.log").open("wb") as log:
        process = subprocess.Popen(["mosquitto", "-c", str(_config(tmp, port))], stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(10)


@dataclass
class Session:
    client: mqtt.Client
    events: queue.Queue[tuple[str, Any]]

    def expect(self, kind: str, timeout: float = 5.0) -> Any:
        while True:
            got, value = self.events.get(timeout=timeout)
            if got == kind:
                return value


def _connect(port: int, user: str | None, password: str | None) -> tuple[Session, ReasonCode]:
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"acl-{user}",
                         protocol=mqtt.MQTTv5)
    if user is not None:
        client.username_pw_set(user, password)
    client.on_connect = lambda _c, _u, _f, rc, _p: events.put(("connect", rc))
    client.on_publish = lambda _c, _u, mid, rc, _p: events.put(("puback", (mid, rc)))
    client.on_subscribe = lambda _c, _u, _mid, rcs, _p: events.put(("suback", rcs))
    client.on_message = lambda _c, _u, msg: events.put(("message", (msg.topic, msg.payload)))
    client.connect("127.0.0.1", port)
    client.loop_start()
    session = Session(client, events)
    return session, session.expect("connect")


@pytest.fixture
def sessions(broker: int) -> Iterator[list[Session]]:
    opened: list[Session] = []
    yield opened
    for session in opened:
        session.client.disconnect()
        session.client.loop_stop()


def _login(broker: int, sessions: list[Session], user: str) -> Session:
    session, code = _connect(broker, user, USERS[user])
    sessions.append(session)
    assert not code.is_failure, code
    return session


@pytest.mark.parametrize(("user", "password"), [(None, None), ("LOG-1", "wrong"), ("nobody", "x")])
def test_anonymous_and_unknown_clients_are_refused(
    broker: int, sessions: list[Session], user: str | None, password: str | None
) -> None:
    session, code = _connect(broker, user, password)
    sessions.append(session)
    assert code.is_failure and code.getName() in ("Not authorized", "Bad user name or password")


def test_a_logger_publishes_only_on_its_own_topic_and_ingest_reads_every_logger(
    broker: int, sessions: list[Session]
) -> None:
    ingest = _login(broker, sessions, "coldchain-ingest")
    ingest.client.subscribe("$share/workers/" + TOPIC.format("+"), qos=1)
    (granted,) = ingest.expect("suback")
    assert granted.value == 1  # QoS 1 granted

    logger = _login(broker, sessions, "LOG-1")
    own = logger.client.publish(TOPIC.format("LOG-1"), b'{"ts": 1, "temp_c": 4}', qos=1)
    assert logger.expect("puback") == (own.mid, ReasonCode(mqtt.PacketTypes.PUBACK, "Success"))
    assert ingest.expect("message") == (TOPIC.format("LOG-1"), b'{"ts": 1, "temp_c": 4}')

    forged = logger.client.publish(TOPIC.format("LOG-2"), b'{"ts": 1, "temp_c": 40}', qos=1)
    mid, code = logger.expect("puback")
    assert mid == forged.mid and code.getName() == "Not authorized"
    # mosquitto grants any subscription and applies read rights to each message it delivers.
    logger.client.subscribe(TOPIC.format("+"), qos=1)
    logger.expect("suback")

    other = _login(broker, sessions, "LOG-2")
    mine = other.client.publish(TOPIC.format("LOG-2"), b'{"ts": 2, "temp_c": 5}', qos=1)
    assert other.expect("puback")[0] == mine.mid
    # The forged reading never reached ingest (it was refused before LOG-2 published).
    assert ingest.expect("message") == (TOPIC.format("LOG-2"), b'{"ts": 2, "temp_c": 5}')
    # The broker hands a message to all its subscribers at once: had LOG-1 the right to read
    # LOG-2's telemetry, it would be queued by now. (A slow machine can only make this pass.)
    with pytest.raises(queue.Empty):
        logger.expect("message", timeout=0.5)
    with pytest.raises(queue.Empty):
        ingest.expect("message", timeout=0.1)
