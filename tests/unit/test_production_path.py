"""`pip install coldchain` without the `embedded` extra: the embedded servers stay off its path."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("app", "ingest", "alerts", "simulators")
EMBEDDED_ONLY = ("pgserver", "amqtt")


def _python(script: str, *args: str, env: dict[str, str] | None = None,
            isolated: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, *(["-S"] if isolated else []), "-c", script, *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=env or {k: v for k, v in os.environ.items() if k != "PYTHONPATH"})


def test_only_the_runtime_imports_the_embedded_servers() -> None:
    importers = []
    for path in sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        if relative.startswith("app/embedded/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=relative)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] in EMBEDDED_ONLY or n.startswith("app.embedded") for n in names):
                importers.append(relative)
    assert sorted(set(importers)) == ["app/runtime.py"]  # typing, and where URLs are unset


def test_no_module_loads_the_embedded_servers_and_configured_urls_need_none() -> None:
    modules = sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for package in PACKAGES for p in (REPO / package).rglob("*.py")
        if not p.relative_to(REPO).as_posix().startswith("app/embedded/")
        and p.name != "__main__.py")  # runs a command when imported
    script = f"""
import importlib, sys
for name in {modules!r}:
    importlib.import_module(name)
from app.runtime import resolved
from app.core.settings import Settings
configured = Settings(database_url="postgresql://x@127.0.0.1:9/x", mqtt_url="mqtt://127.0.0.1:9")
with resolved(configured) as live:
    assert live.database_url == configured.database_url
print(sorted(m for m in sys.modules if m.split(".")[0] in {EMBEDDED_ONLY!r}
             or m.startswith("app.embedded")))
"""
    result = _python(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_the_extra_unset_urls_are_refused_with_what_to_install(tmp_path: Path) -> None:
    """A site-packages without pgserver and amqtt (links to everything else), nothing on PATH."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    bare = tmp_path / "site-packages"
    bare.mkdir()
    for entry in site.iterdir():
        if not entry.name.startswith(EMBEDDED_ONLY):
            (bare / entry.name).symlink_to(entry)
    (tmp_path / "empty-bin").mkdir()
    env = {"PATH": str(tmp_path / "empty-bin"), "PYTHONPATH": f"{REPO}{os.pathsep}{bare}",
           "COLDCHAIN_DATA_DIR": str(tmp_path / "var"), "HOME": str(tmp_path)}
    script = """
import sys
from app.embedded import EmbeddedBroker, EmbeddedUnavailable
try:
    EmbeddedBroker(sys.argv[1], use_mosquitto=False).start()
except EmbeddedUnavailable as exc:
    print("broker:", exc)
from app.cli.main import main
sys.argv = ["coldchain", "migrate"]
main()
"""
    result = _python(script, str(tmp_path / "mqtt"), env=env, isolated=True)
    assert result.returncode == 2, result.stderr
    assert result.stdout.startswith("broker: MQTT_URL is unset and there is no broker")
    assert "pip install 'coldchain[embedded]'" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == (
        "error: DATABASE_URL is unset and there are no PostgreSQL binaries for an embedded server: "
        "install the embedded extra (pip install 'coldchain[embedded]') or set DATABASE_URL")
