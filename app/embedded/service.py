"""As root, embedded PostgreSQL runs as a service user from a directory that user owns.

PostgreSQL refuses to run as root, and an unprivileged user cannot enter a checkout under a
private directory (root's home, `mktemp -d`): rather than widening the permissions of the
user's directories, the clusters and a runnable copy of the pgserver wheel's binaries live
under the service home (`COLDCHAIN_EMBEDDED_HOME`, default /var/lib/coldchain, mode 0700).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

HOME_ENV = "COLDCHAIN_EMBEDDED_HOME"
DEFAULT_HOME = Path("/var/lib/coldchain")
SERVICE_USERS = ("postgres", "coldchain")


class EmbeddedUnavailable(RuntimeError):
    """An embedded server cannot be started here (missing binaries, unusable service home)."""


def service_user() -> pwd.struct_passwd | None:
    """The user PostgreSQL runs as when we are root (None: we are not root, it runs as us)."""
    if os.geteuid() != 0:
        return None
    for name in SERVICE_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", str(home_path()),
                    "--shell", "/usr/sbin/nologin", SERVICE_USERS[-1]], check=True,
                   capture_output=True)
    return pwd.getpwnam(SERVICE_USERS[-1])


def home_path() -> Path:
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).absolute()


def as_user(user: pwd.struct_passwd | None) -> dict[str, object]:
    """subprocess keyword arguments that run a command as `user` (from `/`, which it may enter)."""
    if user is None:
        return {"cwd": "/"}
    return {"cwd": "/", "user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def service_home(user: pwd.struct_passwd) -> Path:
    """The service user's own directory (created, owned by it, mode 0700); it must reach it."""
    path = home_path()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    status = path.stat()
    if (status.st_uid, status.st_gid) != (user.pw_uid, user.pw_gid):
        os.chown(path, user.pw_uid, user.pw_gid)
    if status.st_mode & 0o777 != 0o700:
        path.chmod(0o700)
    probe = subprocess.run(["/bin/sh", "-c", 'test -w "$0" -a -x "$0"', str(path)], check=False,
                           **as_user(user))  # type: ignore[call-overload]
    if probe.returncode != 0:
        raise EmbeddedUnavailable(
            f"user {user.pw_name} cannot enter {path}, the embedded servers' home: set {HOME_ENV} "
            "to a directory whose parents it may enter (e.g. under /var/lib)")
    return path


def _pgserver_bin_dir() -> Path | None:
    """The pgserver wheel's binaries, found without importing it (its import has side effects)."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bin_dir if (bin_dir / "pg_ctl").exists() else None


def postgres_bin_dir() -> Path:
    """pgserver's PostgreSQL binaries, else the `pg_ctl` found on PATH."""
    found = _pgserver_bin_dir() or (Path(p).resolve().parent if (p := shutil.which("pg_ctl")) else None)
    if found is None:
        raise EmbeddedUnavailable(
            "DATABASE_URL is unset and there are no PostgreSQL binaries for an embedded server: "
            "install the embedded extra (pip install 'coldchain[embedded]') or set DATABASE_URL")
    return found


# What the wheel's binaries need, relative to site-packages: their RUNPATHs are relative
# ($ORIGIN/../../../pgserver.libs) and PostgreSQL finds share/ and lib/ relative to bin/.
_WHEEL_PARTS = ("pgserver/pginstall/bin", "pgserver/pginstall/lib", "pgserver/pginstall/share",
                "pgserver.libs")


def runnable_bin_dir(bin_dir: Path, home: Path) -> Path:
    """`bin_dir` itself, or for the pgserver wheel a copy under `home` (made once per build)."""
    if bin_dir != _pgserver_bin_dir():
        return bin_dir  # a system installation: its directories are open to everyone
    site = bin_dir.parents[2]
    parts = [site / part for part in _WHEEL_PARTS if (site / part).is_dir()]
    files = sorted(p for part in parts for p in part.rglob("*") if p.is_file() or p.is_symlink())
    digest = hashlib.sha256(importlib.metadata.version("pgserver").encode())
    for path in files:
        status = path.lstat()
        digest.update(f"{path.relative_to(site)}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
    copy = home / "pgsql" / digest.hexdigest()[:16]
    if not (copy / "pgserver/pginstall/bin/pg_ctl").exists():
        copy.parent.mkdir(mode=0o755, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=copy.parent))
        try:
            for part in parts:
                shutil.copytree(part, partial / part.relative_to(site), symlinks=True)
            _open_to_all(partial)
            partial.rename(copy)
        except OSError:
            if not (copy / "pgserver/pginstall/bin/pg_ctl").exists():
                raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)  # a concurrent process copied it first
    return copy / "pgserver/pginstall/bin"


def _open_to_all(root: Path) -> None:
    """Readable (and where executable, runnable) by the service user, writable by root only."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(0o755 if path.is_dir() or mode & 0o111 else 0o644)
