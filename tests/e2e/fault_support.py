"""Fault-test harness: throwaway servers, role processes to SIGKILL, a webhook receiver to unplug.

Each role runs as its real entry point in its own process (`python -m app.cli ingest`, …) against a
throwaway PostgreSQL and mosquitto (app.embedded) that the tests stop, crash and restart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from app.core.broker import BrokerAddress
from app.core.settings import Settings
from app.embedded import free_port
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {
    "ingest": [sys.executable, "-m", "app.cli", "ingest"],
    "alerts": [sys.executable, "-m", "app.cli", "alerts"],
    "delivery": [sys.executable, "-m", "tests.e2e.run_delivery"],
}


@dataclass
class Role:
    """One role in its own process; logs to `log_path` (shown when a test fails)."""

    name: str
    settings: Settings
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        s = self.settings
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("COLDCHAIN_")},
            "DATABASE_URL": s.database_url or "", "MQTT_URL": s.mqtt_url or "",
            "COLDCHAIN_TOPIC_PREFIX": s.topic_prefix, "COLDCHAIN_INGEST_GROUP": s.ingest_group,
            "COLDCHAIN_INGEST_CLIENT_ID": s.ingest_client_id or "",
            "COLDCHAIN_EVALUATOR_PERIOD_S": str(s.evaluator_period_s),
            "COLDCHAIN_WEBHOOK_ALLOW_PRIVATE": "true",  # the default 10 s timeout an attempt
            "COLDCHAIN_DATA_DIR": str(self.log_path.parent),
        }

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.name} {time.strftime('%X')}\n".encode())
            self.process = subprocess.Popen(COMMANDS[self.name], env=self.env(), cwd=ROOT,
                                            stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """SIGKILL: no clean-up, no flush, no ack."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 20.0) -> tuple[int, float]:
        """SIGTERM and wait: (exit code, seconds it took)."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        return code, time.monotonic() - started

    def wait_for(self, marker: str, timeout: float = 30.0) -> None:
        """Until the role's log shows `marker` (after its latest start)."""
        deadline = time.monotonic() + timeout
        while marker not in self.log_path.read_text(errors="replace").rsplit("--- start", 1)[-1]:
            if not self.alive() or time.monotonic() > deadline:
                raise AssertionError(f"{self.name} never logged {marker!r}:\n{self.log()}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


class Publisher:
    """A logger's QoS 1 publisher that rides out a broker restart (persistent session, resend).

    Acknowledgements are counted in `on_publish`: paho re-sends what was queued or in flight when
    the connection came back, and a message published while disconnected is acknowledged then.
    """

    def __init__(self, url: str, client_id: str, *, window: int = 50) -> None:
        address = BrokerAddress.parse(url)
        self.window = window
        self._pending: set[int] = set()
        self._acked: set[int] = set()
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        self.client.on_publish = self._on_publish
        self.client.reconnect_delay_set(0.1, 0.5)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 300
        self.client.connect(address.host, address.port, 10, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_publish(self, _c: Any, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        with self._lock:
            if mid in self._pending:
                self._pending.discard(mid)
            else:  # acknowledged before publish() returned its mid
                self._acked.add(mid)

    def publish(self, topic: str, payload: bytes) -> None:
        self._drain(self.window - 1)
        info = self.client.publish(topic, payload, qos=1)
        with self._lock:
            if info.mid in self._acked:
                self._acked.discard(info.mid)
            else:
                self._pending.add(info.mid)

    def _drain(self, keep: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self._pending) <= keep:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self._pending)} messages never acknowledged by the broker")
            time.sleep(0.005)

    def close(self) -> None:
        self._drain(0)
        self.client.disconnect()
        self.client.loop_stop()


class Receiver:
    """A webhook endpoint on 127.0.0.1 that can be unplugged (connection refused) and plugged in."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[str, dict[str, Any]]] = []  # (webhook-id, body)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def ids(self) -> set[str]:
        with self._lock:
            return {webhook_id for webhook_id, _ in self.received}

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    receiver.received.append((self.headers.get("webhook-id", ""), json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return None

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@dataclass
class Plan:
    """What a run publishes: readings every 5 s over 50 min, with two excursions above 8 °C."""

    start: datetime
    count: int = 600
    excursions: tuple[range, ...] = field(default=(range(200, 260), range(400, 430)))

    @property
    def halves(self) -> tuple[range, range]:
        """Before and after a fault: each holds one excursion."""
        return range(0, self.count // 2), range(self.count // 2, self.count)

    def temp(self, i: int) -> float:
        """Each excursion a degree warmer than the last: a new peak is news (an alert event)."""
        return next((12.0 + k for k, r in enumerate(self.excursions) if i in r), 5.0)

    def payload(self, i: int) -> bytes:
        ts = (self.start + timedelta(seconds=5 * i)).isoformat().replace("+00:00", "Z")
        return json.dumps({"ts": ts, "temp_c": self.temp(i), "seq": i}).encode()


async def register_world(client: httpx.AsyncClient, logger_id: str, plan: Plan,
                         receiver_url: str) -> str:
    """A 2–8 °C shipment packed just before the plan's first reading; a catch-all webhook."""
    origin = await f.site(client, "Leiden CTU", "NL")
    destination = await f.site(client, "Boston", "US")
    product = await f.refrigerated_product(client, stability_budget_s=86_400)
    await f.logger(client, logger_id, interval_s=5)
    shipment = await f.post(client, "/shipments", {
        "reference": "FAULT-1", "lane_id": await f.lane(client, origin, destination),
        "product_id": product, "packaging_id": await f.packaging(client, 96.0),
        "logger_ids": [logger_id], "packed_at": (plan.start - timedelta(minutes=1)).isoformat(),
    })
    hook = await client.post("/api/v1/webhooks", json={"url": receiver_url})
    assert hook.status_code == 201, hook.text
    return str(shipment["id"])


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
