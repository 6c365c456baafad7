"""Dependencies point one way (STYLE.md), checked on the source so a stray import fails CI.

Layers, bottom to top:
- core (`app/core/`): settings, database, tables, errors, security, the audit chain, site scope
  and the shared plumbing. It imports no feature and no entry point.
- features (`app/services/`, `app/schemas/`, `app/dashboard/`, `app/reports/`, `app/web/`,
  `app/embedded/`, `ingest/`, `alerts/`, `simulators/`): import the core and each other,
  never an entry point.
- entry points (`app/api/`, `app/cli/`, `app/runtime.py`): on top; only they start processes.
Imports inside functions count too: a lazy import is no way around the rule.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import alerts.rules

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("app", "ingest", "alerts", "simulators")
CORE = ("app/core/",)
ENTRY_POINTS = ("app/api/", "app/cli/", "app/runtime.py")
FEATURES = (
    "app/services/", "app/schemas/", "app/dashboard/", "app/reports/", "app/web/",
    "app/embedded/", "ingest/", "alerts/", "simulators/",
)
PACKAGE_MARKERS = ("app/__init__.py",)


def _module_path(name: str) -> str:
    """`app.core.db` → `app/core/db`: compared by prefix against the layer folders."""
    return name.replace(".", "/")


def _imports(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (functions included), made absolute."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = str(path.relative_to(ROOT).parent).replace("/", ".")
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            # `from app.core import db` imports the module app.core.db
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _sources(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.py"))


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _layer(rel: str) -> str | None:
    """The layer of a file (`app/core/db.py`) or an imported module path (`app/core/db`)."""
    rel = rel.removesuffix(".py")
    for layer, prefixes in (("core", CORE), ("entry", ENTRY_POINTS), ("feature", FEATURES)):
        for prefix in prefixes:
            stem = prefix.removesuffix("/").removesuffix(".py")
            if rel == stem or rel.startswith(stem + "/"):
                return layer
    return None


def _project_imports(path: Path) -> set[str]:
    return {_module_path(n) for n in _imports(path) if n.split(".")[0] in PACKAGES}


def _owners(top_module: str) -> list[str]:
    return [
        _rel(p) for p in _sources(*PACKAGES)
        if any(n == top_module or n.startswith(top_module + ".") for n in _imports(p))
    ]


def test_every_module_has_a_layer() -> None:
    unplaced = [
        _rel(p) for p in _sources(*PACKAGES)
        if _layer(_rel(p)) is None and _rel(p) not in PACKAGE_MARKERS
    ]
    assert unplaced == [], "add each to CORE, FEATURES or ENTRY_POINTS in this test"


@pytest.mark.parametrize("path", _sources("app/core"), ids=_rel)
def test_core_imports_only_core(path: Path) -> None:
    upward = sorted(
        n for n in _project_imports(path)
        if _layer(n) in ("feature", "entry")
    )
    assert upward == [], f"{_rel(path)} reaches up to {upward}"


@pytest.mark.parametrize(
    "path", [p for p in _sources(*PACKAGES) if _layer(_rel(p)) == "feature"], ids=_rel
)
def test_features_never_import_an_entry_point(path: Path) -> None:
    upward = sorted(n for n in _project_imports(path) if _layer(n) == "entry")
    assert upward == [], f"{_rel(path)} imports entry points {upward}"


def test_the_layer_check_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The checker itself: an import inside a function, or a relative one, is still an import."""
    probe = ROOT / "app" / "core" / "_probe_for_architecture_test.py"
    probe.write_text("def f():\n    from app.runtime import resolved\n    from ..api import main\n")
    try:
        found = _project_imports(probe)
    finally:
        probe.unlink()
    assert {"app/runtime/resolved", "app/api/main"} <= found
    assert [_layer(n) for n in ("app/runtime/resolved", "app/api/main", "app/core/db")] == [
        "entry", "entry", "core"]


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


def test_only_the_mail_delivery_loop_imports_the_smtp_client() -> None:
    assert _owners("aiosmtplib") == ["alerts/mail/delivery.py"]


def test_the_mail_message_is_composed_by_pure_code() -> None:
    foreign = {name for name in _imports(ROOT / "alerts/mail/compose.py")
               if name.split(".")[0] not in sys.stdlib_module_names}
    # The alert kinds' labels (alerts/messages.py, itself pure but for the rules' profile type).
    assert foreign == {"alerts.messages", "alerts.messages.KIND_LABELS"}


def test_nothing_but_entry_points_imports_the_api() -> None:
    offenders = [p for p in _owners("app.api") if _layer(p) != "entry"]
    assert offenders == []


@pytest.mark.parametrize("path", _sources("alerts/rules"), ids=lambda p: p.name)
def test_pure_rules_import_only_the_standard_library(path: Path) -> None:
    foreign = {
        name for name in _imports(path)
        if name.split(".")[0] not in sys.stdlib_module_names and not name.startswith("alerts.rules")
    }
    assert foreign == set(), f"{path.name} imports {foreign}"


def test_the_rules_are_used_through_their_public_api() -> None:
    """`alerts.rules` (its __init__) is the API; its modules are its own business."""
    offenders = sorted(
        f"{_rel(p)} imports {name}" for p in _sources(*PACKAGES)
        if not _rel(p).startswith("alerts/rules/")
        for name in _imports(p)
        if name.startswith("alerts.rules.") and name.removeprefix("alerts.rules.")
        not in _public_names()
    )
    assert offenders == []


def _public_names() -> set[str]:
    """What `from alerts.rules import X` may name (X then shows as `alerts.rules.X` above)."""
    return set(alerts.rules.__all__)


def test_the_installed_package_needs_no_development_tool() -> None:
    """`benchmarks/` (the socket load publisher, the benchmarks) and `tests/` are not installed."""
    offenders = [p for tool in ("benchmarks", "tests") for p in _owners(tool)]
    assert offenders == []
