"""The embedded servers `make demo` relies on when DATABASE_URL / MQTT_URL are unset."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from app.core.settings import Settings
from app.embedded import EmbeddedBroker, EmbeddedPostgres
from app.runtime import resolved


def _round_trip(port: int, protocol: int) -> bytes:
    received = threading.Event()
    payloads: list[bytes] = []

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        payloads.append(message.payload)
        received.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=protocol)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.subscribe("embedded/#", qos=1)[0]
        for _ in range(50):  # the subscription must be in place before publishing
            info = client.publish("embedded/check", b"ping", qos=1)
            info.wait_for_publish(5)
            if received.wait(0.2):
                break
    finally:
        client.loop_stop()
        client.disconnect()
    assert payloads, "no message came back"
    return payloads[0]


@pytest.mark.parametrize("use_mosquitto", [True, False], ids=["mosquitto", "amqtt"])
def test_embedded_broker_round_trip(tmp_path: Path, use_mosquitto: bool) -> None:
    broker = EmbeddedBroker(tmp_path / "mqtt", use_mosquitto=use_mosquitto)
    broker.start()
    try:
        protocol = mqtt.MQTTv5 if broker.supports_mqtt5 else mqtt.MQTTv311
        assert _round_trip(broker.port, protocol) == b"ping"
    finally:
        broker.stop()


def test_embedded_postgres_survives_restart_and_sigkill(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg", throwaway=True)
    pg.start()
    url = pg.owner_url

    def psql(sql: str) -> str:
        return subprocess.run(["psql", url, "-qtAc", sql], check=True, capture_output=True,
                              text=True).stdout.strip()

    try:
        psql("CREATE TABLE t (v int); INSERT INTO t VALUES (42)")
        pg.stop()
        pg.start()
        pg.kill()
        pg.start()
        assert psql("SELECT v FROM t") == "42"
    finally:
        pg.destroy()


def test_resolved_fills_unset_urls_with_embedded_servers(tmp_path: Path) -> None:
    settings = Settings(database_url=None, mqtt_url=None, data_dir=tmp_path)
    with resolved(settings) as live:
        assert live.database_url and live.database_url.startswith(
            "postgresql://coldchain_app@127.0.0.1:")
        assert live.migration_url and live.migration_url.startswith(
            "postgresql://coldchain_owner@127.0.0.1:")
        assert live.mqtt_url and live.mqtt_url.startswith("mqtt://127.0.0.1:")
        out = subprocess.run(["psql", live.database_url, "-qtAc", "SELECT 1"], capture_output=True,
                             text=True, check=True)
        assert out.stdout.strip() == "1"
    EmbeddedPostgres(tmp_path / "postgres").destroy()  # what `make demo` keeps, a test does not


def _roles(url: str) -> str:
    return subprocess.run(
        ["psql", url, "-qtAc", "SELECT current_user, rolsuper, rolcreaterole, rolcreatedb, "
         "(SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()) "
         "FROM pg_roles WHERE rolname = current_user"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()


def test_embedded_postgres_sets_up_an_owner_and_a_service_role_that_owns_nothing(
    tmp_path: Path,
) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg", throwaway=True)
    pg.start()
    try:
        assert _roles(pg.url) == "coldchain_app|f|f|f|coldchain_owner"
        assert _roles(pg.owner_url) == "coldchain_owner|f|f|f|coldchain_owner"
        # A data directory from before the roles: its objects belong to the bootstrap superuser.
        pg.psql(pg.database, "CREATE TABLE legacy (v int); CREATE SEQUENCE legacy_seq; "
                "CREATE FUNCTION legacy_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'; "
                "ALTER DATABASE coldchain OWNER TO postgres")
        pg.stop()
        pg.start()  # adopts them
        owners = pg.psql(pg.database, "SELECT string_agg(o, ',' ORDER BY o) FROM ("
                         "SELECT pg_get_userbyid(relowner) || ':' || relname AS o FROM pg_class "
                         "WHERE relname IN ('legacy', 'legacy_seq') UNION ALL "
                         "SELECT pg_get_userbyid(proowner) || ':' || proname FROM pg_proc "
                         "WHERE proname = 'legacy_fn') x").stdout.strip()
        assert owners == "coldchain_owner:legacy,coldchain_owner:legacy_fn,coldchain_owner:legacy_seq"
        assert _roles(pg.url).endswith("|coldchain_owner")
    finally:
        pg.destroy()


def test_embedded_mosquitto_has_the_recommended_limits(tmp_path: Path) -> None:
    """The broker the tests and the demo run is the one README recommends (docs/mosquitto.conf)."""
    limits = ("max_packet_size", "message_size_limit", "max_queued_messages", "max_inflight_messages",
              "persistence", "autosave_interval", "persistent_client_expiration")

    def settings_of(text: str) -> dict[str, str]:
        pairs = (line.split(None, 1) for line in text.splitlines() if line and not line.startswith("#"))
        return {key: value.strip() for key, value in pairs if key in limits}

    command = EmbeddedBroker(tmp_path, use_mosquitto=True)._command()
    assert command[0].endswith("mosquitto")
    embedded = settings_of(Path(command[-1]).read_text())
    recommended = settings_of((Path(__file__).resolve().parents[2] / "docs/mosquitto.conf").read_text())
    assert embedded == recommended
    assert embedded["max_packet_size"] == "16777216" and "message_size_limit" not in embedded
