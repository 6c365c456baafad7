"""Roles as their real entry points: what each serves alone (metrics, readiness) and how it stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.embedded import free_port
from tests.conftest import ADMIN_KEY
from tests.servers import Servers

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(90)


def _env(servers: Servers, data_dir: Path, **extra: str) -> dict[str, str]:
    """The database only: no MQTT_URL, so a role that wanted a broker would start an embedded
    one under `data_dir` (the tests check it did not)."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith("COLDCHAIN_") and k not in ("DATABASE_URL", "MQTT_URL")}
    return {**keep, "DATABASE_URL": servers.database.url, "COLDCHAIN_DATA_DIR": str(data_dir),
            "COLDCHAIN_ADMIN_API_KEY": ADMIN_KEY, **extra}


class Process:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", *args], env=env,
                                         cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def get_until_up(self, url: str, **kwargs: object) -> httpx.Response:
        """GET `url` once the process listens (bounded: 60 s)."""
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, f"the process exited:\n{self.log()}"
            try:
                return httpx.get(url, timeout=5, **kwargs)  # type: ignore[arg-type]
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"nothing answered at {url}:\n{self.log()}") from None
                time.sleep(0.1)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.close()


def test_standalone_alerts_role_serves_metrics_on_its_port(
    servers: Servers, tmp_path: Path, processes: list[Process]
) -> None:
    port = free_port()
    alerts = Process(["alerts"], _env(servers, tmp_path, COLDCHAIN_ALERTS_METRICS_PORT=str(port)),
                     tmp_path / "alerts.log")
    processes.append(alerts)
    metrics = alerts.get_until_up(f"http://127.0.0.1:{port}/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    # The evaluation engine's and the webhook delivery's metrics, both run by this role.
    assert "# TYPE coldchain_evaluation_shipments_total counter" in metrics.text
    assert "coldchain_webhook_" in metrics.text
    assert alerts.terminate() == 0, alerts.log()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
    assert not (tmp_path / "mqtt").exists()  # the alerts role never needs a broker


def test_api_alone_is_ready_without_a_broker_and_ends_live_streams_on_sigterm(
    servers: Servers, tmp_path: Path, processes: list[Process]
) -> None:
    port = free_port()
    api = Process(["api", "--port", str(port)], _env(servers, tmp_path), tmp_path / "api.log")
    processes.append(api)
    base = f"http://127.0.0.1:{port}"
    ready = api.get_until_up(f"{base}/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok"}
    assert not (tmp_path / "mqtt").exists()  # no embedded broker was started for it

    events: list[str] = []
    with httpx.stream("GET", f"{base}/api/v1/stream", timeout=30,
                      headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as stream:
        assert stream.status_code == 200
        for line in stream.iter_lines():
            events.append(line)
            if line == "event: ready":
                api.proc.send_signal(signal.SIGTERM)
        # Reaching here means the server ended the chunked body properly: a connection cut
        # mid-stream raises httpx.RemoteProtocolError instead.
    assert "event: ready" in events
    assert api.proc.wait(30) == 0, api.log()
    assert "timeout graceful shutdown exceeded" not in api.log()
