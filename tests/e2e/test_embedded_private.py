"""As root, embedded PostgreSQL under a private (0700) directory, leaving its permissions alone.

The server runs as a service user from a home of its own (a fresh one here, so the copy of the
binaries is made in front of us); the data directory the caller named links to the cluster.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from app.embedded import EmbeddedPostgres
from app.embedded.service import HOME_ENV, as_user, service_user

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a service user is root's affair")


def private_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="coldchain-private-"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    return path


def permissions(root: Path) -> dict[Path, tuple[int, int, int]]:
    """Mode and owner of `root`, every directory above it and every directory in it."""
    dirs = [*root.parents, root, *(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())]
    return {p: (s.st_mode, s.st_uid, s.st_gid) for p in dirs for s in [p.lstat()]}


def psql(url: str, sql: str) -> str:
    return subprocess.run(["psql", url, "-qtAc", sql], check=True, capture_output=True,
                          text=True).stdout.strip()


def postmaster(pgdata: Path) -> psutil.Process:
    return psutil.Process(int((pgdata / "postmaster.pid").read_text().splitlines()[0]))


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    """A service home of this module's own, removed with everything in it at the end."""
    path = Path(tempfile.mkdtemp(prefix="coldchain-home-"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(HOME_ENV, str(path))
        yield path
    for pid_file in path.glob("clusters/*/data/postmaster.pid"):
        subprocess.run([next(path.glob("pgsql/*/pgserver/pginstall/bin")) / "pg_ctl", "-D",
                        pid_file.parent, "-m", "immediate", "stop"], check=False, capture_output=True,
                       **as_user(service_user()))  # type: ignore[call-overload]
    shutil.rmtree(path)


def test_a_cluster_under_a_private_directory_widens_nothing(home: Path) -> None:
    private = private_dir()
    try:
        data_dir = private / "checkout" / "var" / "postgres"
        data_dir.parent.mkdir(parents=True)
        before = permissions(private)
        pg = EmbeddedPostgres(data_dir, throwaway=True)
        pg.start()
        try:
            psql(pg.owner_url, "CREATE TABLE t (v int); INSERT INTO t VALUES (7)")
            assert psql(pg.url, "SELECT count(*) FROM pg_tables WHERE tablename = 't'") == "1"
            assert permissions(private) == before  # no directory of the user's changed
            user = service_user()
            assert user is not None
            cluster = pg.pgdata.parent
            assert data_dir.is_symlink() and cluster.parent == home / "clusters"
            status = cluster.stat()
            assert (status.st_uid, stat.S_IMODE(status.st_mode)) == (user.pw_uid, 0o700)
            assert postmaster(pg.pgdata).uids().real == user.pw_uid
            assert pg.bin_dir.is_relative_to(home / "pgsql")
            assert "database system is ready" in (data_dir / "server.log").read_text()
        finally:
            pg.destroy()
        assert not cluster.exists() and not data_dir.exists() and not data_dir.is_symlink()
    finally:
        shutil.rmtree(private)


def test_the_binaries_are_copied_once_and_only_root_may_change_them(home: Path) -> None:
    private = private_dir()
    try:
        first = EmbeddedPostgres(private / "a" / "pg").bin_dir
        second = EmbeddedPostgres(private / "b" / "pg").bin_dir
        assert first == second and len(list((home / "pgsql").iterdir())) == 1
        copy = home / "pgsql" / first.relative_to(home / "pgsql").parts[0]
        writable = [p for p in [copy, *copy.rglob("*")] if not p.is_symlink()
                    and (p.stat().st_uid != 0 or p.stat().st_mode & 0o022)]
        assert writable == []
        user = service_user()
        version = subprocess.run([first / "postgres", "--version"], check=True, capture_output=True,
                                 text=True, **as_user(user))  # type: ignore[call-overload]
        assert version.stdout.startswith("postgres (PostgreSQL) ")
    finally:
        shutil.rmtree(private)


def test_a_throwaway_cluster_goes_once_its_process_has_exited(home: Path) -> None:
    """A test run killed before its clean-up leaves its server running: the next one removes it."""
    private = private_dir()
    script = ("import sys; from app.embedded import EmbeddedPostgres; "
              "pg = EmbeddedPostgres(sys.argv[1], throwaway=sys.argv[2] == 'yes'); pg.start(); "
              "print(pg.pgdata)")
    try:
        left: dict[str, Path] = {}
        for kind in ("yes", "no"):
            out = subprocess.run([sys.executable, "-c", script, str(private / kind), kind], cwd=REPO,
                                 check=True, capture_output=True, text=True)
            left[kind] = Path(out.stdout.strip())
        orphan = postmaster(left["yes"])
        assert orphan.is_running()
        pg = EmbeddedPostgres(private / "next", throwaway=True)
        pg.start()
        try:
            assert not left["yes"].parent.exists() and not orphan.is_running()
            assert (left["no"] / "PG_VERSION").exists()  # `make demo`'s data is never swept
        finally:
            pg.destroy()
            EmbeddedPostgres(private / "no").destroy()
    finally:
        shutil.rmtree(private)


def test_removing_the_data_directory_starts_afresh_and_a_cluster_in_place_stays(home: Path) -> None:
    private = private_dir()
    try:
        pg = EmbeddedPostgres(private / "var" / "postgres")
        pg.start()
        psql(pg.owner_url, "CREATE TABLE kept (v int)")
        pg.stop()
        old = pg.pgdata
        shutil.rmtree(private / "var")  # `make clean`, or rm -rf var
        pg = EmbeddedPostgres(private / "var" / "postgres")
        pg.start()
        try:
            assert pg.pgdata != old
            assert psql(pg.owner_url, "SELECT count(*) FROM pg_tables WHERE tablename = 'kept'") == "0"
        finally:
            pg.destroy()
            shutil.rmtree(old.parent)
    finally:
        shutil.rmtree(private)


def test_a_cluster_made_in_place_before_stays_where_it_is(home: Path) -> None:
    """Clusters made inside the data directory (before the service home) are used in place."""
    open_dir = Path(tempfile.mkdtemp(prefix="coldchain-legacy-"))
    try:
        open_dir.chmod(0o755)  # how the earlier version left it
        data_dir = open_dir / "postgres"
        data_dir.mkdir(mode=0o700)
        user = service_user()
        assert user is not None
        os.chown(data_dir, user.pw_uid, user.pw_gid)
        pg = EmbeddedPostgres(data_dir, throwaway=True)
        subprocess.run([pg.bin_dir / "initdb", "-D", data_dir, "-U", "postgres", "--auth=trust",
                        "--no-sync"], check=True, capture_output=True,
                       **as_user(user))  # type: ignore[call-overload]
        pg.start()
        try:
            assert pg.pgdata == data_dir and not data_dir.is_symlink()
            assert psql(pg.url, "SELECT current_user") == "coldchain_app"
        finally:
            pg.destroy()
        assert not data_dir.exists()
    finally:
        shutil.rmtree(open_dir)
