"""A checkout under a private directory (`mktemp -d`, mode 0700), its virtualenv inside it.

As root this was the failing case: the embedded PostgreSQL runs as an unprivileged user, which
cannot enter the checkout to run the pgserver wheel's binaries. A test run from such a copy, on
embedded servers of its own, must pass and leave every directory's permissions as they were.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sysconfig
import tempfile
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# On the suite's embedded servers: an API test and an ingest test through the broker; and what
# `make demo` starts (the servers for unset URLs, under COLDCHAIN_DATA_DIR inside the checkout).
TESTS = ["tests/api/test_reference.py::test_site_round_trip",
         "tests/e2e/test_ingest.py::test_the_same_reading_delivered_many_times_is_stored_once",
         "tests/e2e/test_embedded.py::test_resolved_fills_unset_urls_with_embedded_servers"]
SKIP = (".venv", ".git", "var", "__pycache__", ".pytest_cache", ".hypothesis", "*.egg-info",
        ".mypy_cache", ".ruff_cache")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _permissions(root: Path) -> dict[Path, tuple[int, int, int]]:
    dirs = [*root.parents, root, *(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())]
    return {p: (s.st_mode, s.st_uid, s.st_gid) for p in dirs for s in [p.lstat()]}


def _checkout(private: Path) -> Path:
    """A copy of the source, with a virtualenv holding pgserver inside it (the rest from ours)."""
    checkout = private / "coldchain"
    shutil.copytree(REPO, checkout, ignore=shutil.ignore_patterns(*SKIP))
    venv.EnvBuilder(with_pip=False).create(checkout / ".venv")
    ours = Path(sysconfig.get_paths()["purelib"])
    theirs = Path(sysconfig.get_paths(vars={"base": str(checkout / ".venv"),
                                            "platbase": str(checkout / ".venv")})["purelib"])
    for name in ("pgserver", "pgserver.libs"):
        shutil.copytree(ours / name, theirs / name, symlinks=True)
    (theirs / "outer.pth").write_text(f"{ours}\n")  # appended after its own site-packages
    return checkout


def test_a_test_run_from_a_checkout_under_a_private_directory() -> None:
    private = Path(tempfile.mkdtemp(prefix="coldchain-clone-"))
    try:
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        checkout = _checkout(private)
        python = checkout / ".venv" / "bin" / "python"
        where = subprocess.run([python, "-c", "import importlib.util as u; "
                                "print(u.find_spec('pgserver').origin)"], cwd=checkout, check=True,
                               capture_output=True, text=True).stdout
        assert Path(where.strip()).is_relative_to(private)
        before = _permissions(private)
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "MQTT_URL", "PYTEST_ADDOPTS", "PYTHONPATH")}
        run = subprocess.run(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp",
             str(checkout / ".pytest-tmp"), *TESTS],
            cwd=checkout, env=env, capture_output=True, text=True, timeout=240,
        )
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        summary = run.stdout.strip().splitlines()[-1]
        assert summary.startswith("3 passed"), summary
        after = _permissions(private)
        assert {p: after[p] for p in before} == before
    finally:
        shutil.rmtree(private)
