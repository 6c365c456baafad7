"""Embedded MQTT broker: mosquitto from PATH, else the pure-Python amqtt."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from app.embedded.ports import free_port, wait_for_port
from app.embedded.service import EmbeddedUnavailable

log = logging.getLogger(__name__)


def _mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    return found or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


@dataclass
class EmbeddedBroker:
    """Mosquitto (preferred, from PATH) or amqtt, on 127.0.0.1:`port` with a persistent store."""

    data_dir: Path
    port: int = 0
    use_mosquitto: bool | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.port = self.port or free_port()
        if self.use_mosquitto is None:
            self.use_mosquitto = _mosquitto_binary() is not None

    @property
    def supports_mqtt5(self) -> bool:
        """amqtt speaks MQTT 3.1.1 only: no MQTT 5 sessions and no shared subscriptions."""
        return bool(self.use_mosquitto)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        mosquitto = _mosquitto_binary()
        if self.use_mosquitto and mosquitto:
            conf = self.data_dir / "mosquitto.conf"
            conf.write_text(
                f"listener {self.port} 127.0.0.1\n"
                "allow_anonymous true\n"
                "persistence true\n"
                f"persistence_location {self.data_dir}/\n"
                "autosave_interval 10\n"
                # Loggers reconnect after long offline stretches: keep their queued QoS 1 messages.
                "max_queued_messages 1000000\n"
                "max_inflight_messages 1000\n"
                "max_packet_size 16777216\n"
                "persistent_client_expiration 14d\n"
                # As root it keeps root's identity: its files may sit under a private directory.
                + ("user root\n" if os.geteuid() == 0 else "")
            )
            return [mosquitto, "-c", str(conf)]
        if importlib.util.find_spec("amqtt") is None:
            raise EmbeddedUnavailable(
                "MQTT_URL is unset and there is no broker for an embedded one: install mosquitto, "
                "or the embedded extra (pip install 'coldchain[embedded]'), or set MQTT_URL")
        conf = self.data_dir / "amqtt.yaml"
        conf.write_text(
            "listeners:\n  default:\n    type: tcp\n"
            f"    bind: 127.0.0.1:{self.port}\n"
            "auth:\n  allow-anonymous: true\n"
        )
        return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]

    def start(self) -> str:
        command = self._command()
        with (self.data_dir / "broker.log").open("ab") as log_file:
            self.process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        wait_for_port(self.port)
        log.info("embedded MQTT broker on 127.0.0.1:%s", self.port)
        return self.url

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None
