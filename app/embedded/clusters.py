"""Cluster directories under the service home, each linked from the data directory a caller named.

`<home>/clusters/<name>-<id>/data` is the cluster; the caller's data directory becomes a symbolic
link to it (so `var/postgres/server.log` is where it always was), `origin` names that link, and a
throwaway cluster (tests, benchmarks) records its owner process in `owner`: once that process is
gone, the next throwaway cluster's start removes it, with any server it left running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import secrets
import shutil
from pathlib import Path

import psutil

log = logging.getLogger(__name__)


def linked_cluster(data_dir: Path, home: Path, user: pwd.struct_passwd, *, throwaway: bool) -> Path:
    """The cluster directory (PGDATA) behind `data_dir`, made and linked there when there is none.

    A data directory that already holds a cluster (made before clusters moved to the service
    home) stays where it is.
    """
    clusters = home / "clusters"
    if data_dir.is_symlink():
        target = Path(os.readlink(data_dir))
        if (target.parent / "origin").is_file():
            _write(target.parent / "origin", str(data_dir))  # the checkout may have moved
            return target
        if target.exists():
            raise RuntimeError(f"{data_dir} links to {target}, which is no cluster made here")
        data_dir.unlink()  # its cluster was removed: start afresh
    elif data_dir.is_dir():
        if (data_dir / "PG_VERSION").exists():
            return data_dir
        if any(data_dir.iterdir()):
            raise RuntimeError(f"{data_dir} is neither empty nor a PostgreSQL cluster")
        data_dir.rmdir()
    clusters.mkdir(mode=0o755, exist_ok=True)
    if throwaway:
        sweep(clusters)
    cluster = clusters / f"{data_dir.name}-{secrets.token_hex(6)}"
    cluster.mkdir(mode=0o700)
    os.chown(cluster, user.pw_uid, user.pw_gid)
    _write(cluster / "origin", str(data_dir))
    if throwaway:
        _write(cluster / "owner", _process_mark(psutil.Process()))
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    data_dir.symlink_to(cluster / "data", target_is_directory=True)
    log.info("embedded PostgreSQL cluster %s (linked from %s)", cluster, data_dir)
    return cluster / "data"


def remove_cluster(data_dir: Path, pgdata: Path) -> None:
    """Delete a cluster's files and the link to it (its server must be stopped)."""
    if data_dir.is_symlink() and (pgdata.parent / "origin").is_file():
        shutil.rmtree(pgdata.parent, ignore_errors=True)
    else:
        shutil.rmtree(pgdata, ignore_errors=True)
    if data_dir.is_symlink():
        data_dir.unlink()


def sweep(clusters: Path) -> None:
    """Remove throwaway clusters whose owner process has exited."""
    for owner in clusters.glob("*/owner"):
        if _alive(owner.read_text()):
            continue
        kill_postmaster(owner.parent / "data")
        shutil.rmtree(owner.parent, ignore_errors=True)
        log.info("removed throwaway cluster %s: its owner process has exited", owner.parent)


def kill_postmaster(pgdata: Path) -> None:
    """SIGKILL the server running on `pgdata` and its backends, if there is one."""
    pid_file = pgdata / "postmaster.pid"
    try:
        postmaster = psutil.Process(int(pid_file.read_text().splitlines()[0]))
        # A stale pid file's number may belong to another process by now.
        if Path(postmaster.cwd()).resolve() != pgdata.resolve():
            return
        processes = [postmaster, *postmaster.children(recursive=True)]
    except (OSError, IndexError, ValueError, psutil.Error):
        return
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(processes, timeout=10)


def _process_mark(process: psutil.Process) -> str:
    return f"{process.pid} {process.create_time()!r}"


def _alive(mark: str) -> bool:
    try:
        pid, _ = mark.split()
        return _process_mark(psutil.Process(int(pid))) == mark.strip()
    except (ValueError, psutil.Error):
        return False


def _write(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
