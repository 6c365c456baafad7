"""Dependencies point one way (STYLE.md): checked on the source, so a stray import fails CI."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("app", "ingest", "alerts", "simulators")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _sources(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.py"))


def _owners(top_module: str) -> list[str]:
    return [
        str(p.relative_to(ROOT))
        for p in _sources(*PACKAGES)
        if any(n == top_module or n.startswith(top_module + ".") for n in _imports(p))
    ]


def test_only_the_mqtt_adapters_import_paho() -> None:
    allowed_prefixes = ("ingest/mqtt.py", "ingest/mqtt_client.py", "simulators/")
    offenders = [p for p in _owners("paho") if not p.startswith(allowed_prefixes)]
    assert offenders == []


@pytest.mark.parametrize("library", ["httpx", "httpcore"])
def test_only_delivery_imports_http_clients_in_the_service(library: str) -> None:
    offenders = [
        p for p in _owners(library) if p.startswith(("app/", "ingest/", "alerts/"))
        and p not in ("alerts/webhooks/delivery.py", "alerts/webhooks/transport.py")
    ]
    assert offenders == []


def test_nothing_but_entry_points_imports_the_api() -> None:
    entry_points = {"app/cli/main.py", "app/runtime.py"}
    offenders = [
        p for p in _owners("app.api")
        if not p.startswith("app/api/") and p not in entry_points
    ]
    assert offenders == []


@pytest.mark.parametrize("path", _sources("alerts/rules"), ids=lambda p: p.name)
def test_pure_rules_import_only_the_standard_library(path: Path) -> None:
    foreign = {
        name for name in _imports(path)
        if name.split(".")[0] not in sys.stdlib_module_names and not name.startswith("alerts.rules")
    }
    assert foreign == set(), f"{path.name} imports {foreign}"
