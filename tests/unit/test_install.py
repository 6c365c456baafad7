"""The installed package: the `coldchain` console script and configuration from the environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.core.settings import get_settings


def _coldchain(*args: str) -> subprocess.CompletedProcess[str]:
    """The console script the install made, beside this interpreter (any venv, any directory)."""
    script = Path(sys.executable).parent / "coldchain"
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60,
                          cwd="/", check=False)


def test_console_script_lists_every_command() -> None:
    result = _coldchain("--help")
    assert result.returncode == 0, result.stderr
    for command in ("demo", "up", "api", "ingest", "alerts", "migrate", "simulate", "report",
                    "audit"):
        assert f" {command} " in result.stdout, (command, result.stdout)


def test_console_script_refuses_an_unknown_command() -> None:
    result = _coldchain("no-such-command")
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_settings_come_from_the_contract_s_environment_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://svc@db.example:5432/coldchain")
    monkeypatch.setenv("MQTT_URL", "mqtts://broker.example:8883")
    monkeypatch.setenv("COLDCHAIN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLDCHAIN_TOPIC_PREFIX", "acme/v1")
    monkeypatch.setenv("COLDCHAIN_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("COLDCHAIN_ALERTS_METRICS_PORT", "9102")
    get_settings.cache_clear()
    try:
        settings = get_settings()
    finally:
        get_settings.cache_clear()
    assert settings.database_url == "postgresql://svc@db.example:5432/coldchain"
    assert settings.mqtt_url == "mqtts://broker.example:8883"
    assert settings.data_dir == tmp_path
    assert settings.topic_prefix == "acme/v1"
    assert settings.webhook_allow_private is True
    assert settings.alerts_metrics_port == 9102
