"""Embedded PostgreSQL: a cluster of our own with the production's owner and service roles."""

from __future__ import annotations

import logging
import os
import pwd
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from app.embedded.clusters import kill_postmaster, linked_cluster, remove_cluster
from app.embedded.ports import free_port, wait_for_port
from app.embedded.roles import ADOPT, CREATE_ROLES, OWNER_ROLE, SERVICE_ROLE
from app.embedded.service import as_user, postgres_bin_dir, runnable_bin_dir, service_home, service_user

log = logging.getLogger(__name__)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL cluster for `data_dir`, listening on 127.0.0.1:`port` with trust auth.

    The database belongs to `coldchain_owner` (migrations); the service connects as
    `coldchain_app`, which owns nothing; `postgres` stays the cluster's superuser. As root the
    server runs as a service user and the cluster lives under its home, `data_dir` being a link
    to it (app/embedded/service.py). A `throwaway` cluster (tests, benchmarks) goes with
    `destroy()`, or with a later throwaway's start once the process that made it has exited.
    """

    data_dir: Path
    port: int = 0
    database: str = "coldchain"
    throwaway: bool = False
    _user: pwd.struct_passwd | None = field(default=None, init=False)
    _bin_dir: Path | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        # Not resolve(): as root `data_dir` is a link to the cluster, which must stay the link.
        self.data_dir = Path(os.path.abspath(self.data_dir))
        self._user = service_user()
        if not self.port:
            self.port = int(self._port_file.read_text()) if self._port_file.exists() else free_port()
        self._port_file.parent.mkdir(parents=True, exist_ok=True)
        self._port_file.write_text(str(self.port))

    @property
    def _port_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.port"

    @property
    def pgdata(self) -> Path:
        """The cluster's own directory: `data_dir`, or where its link points."""
        return self.data_dir.resolve()

    def url_for(self, role: str, database: str | None = None) -> str:
        return f"postgresql://{role}@127.0.0.1:{self.port}/{database or self.database}"

    @property
    def url(self) -> str:
        """The service's URL: its role owns nothing."""
        return self.url_for(SERVICE_ROLE)

    @property
    def owner_url(self) -> str:
        """The migrations' URL: the owner of the database and its schema."""
        return self.url_for(OWNER_ROLE)

    @property
    def superuser_url(self) -> str:
        return self.url_for("postgres")

    @property
    def bin_dir(self) -> Path:
        """The binaries the server runs from (as root: a copy the service user may run)."""
        if self._bin_dir is None:
            found = postgres_bin_dir()
            self._bin_dir = found if self._user is None else runnable_bin_dir(
                found, service_home(self._user))
        return self._bin_dir

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # type: ignore[call-overload, no-any-return]
            [str(self.bin_dir / args[0]), *args[1:]], check=check, capture_output=True, text=True,
            **as_user(self._user),
        )

    def _prepare(self) -> Path:
        if self._user is not None:
            home = service_home(self._user)
            return linked_cluster(self.data_dir, home, self._user, throwaway=self.throwaway)
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data_dir.chmod(0o700)  # initdb and the server insist
        return self.data_dir

    def start(self) -> str:
        self.bin_dir  # noqa: B018 - no binaries: say so before making anything
        pgdata = self._prepare()
        if not (pgdata / "PG_VERSION").exists():
            self._run("initdb", "-D", str(pgdata), "-U", "postgres", "--auth=trust",
                      "--encoding=UTF8", "--no-sync")
        if self._run("pg_ctl", "-D", str(pgdata), "status", check=False).returncode != 0:
            options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                       f"-c unix_socket_directories='{pgdata}' -c max_connections=200 "
                       "-c timezone=UTC")
            result = self._run("pg_ctl", "-D", str(pgdata), "-l", str(pgdata / "server.log"),
                               "-o", options, "-w", "-t", "60", "start", check=False)
            if result.returncode != 0:
                raise RuntimeError(f"embedded PostgreSQL did not start: {result.stdout}{result.stderr}")
        wait_for_port(self.port)
        self.psql("postgres", CREATE_ROLES)
        exists = self.psql("postgres", "SELECT 1 FROM pg_database WHERE datname = "
                           f"'{self.database}'").stdout.strip()
        if not exists:
            self.psql("postgres", f"CREATE DATABASE {self.database} OWNER {OWNER_ROLE}")
        self.psql(self.database, ADOPT)
        log.info("embedded PostgreSQL on 127.0.0.1:%s (%s)", self.port, pgdata)
        return self.url

    def psql(self, database: str, sql: str) -> subprocess.CompletedProcess[str]:
        """Run SQL as the superuser (stops at the first error)."""
        return self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d",
                         database, "-v", "ON_ERROR_STOP=1", "-qtAc", sql)

    def stop(self, mode: str = "fast") -> None:
        if (self.pgdata / "PG_VERSION").exists():
            self._run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "stop", check=False)

    def kill(self) -> None:
        """SIGKILL the server and its backends (fault tests): the next start replays the WAL."""
        kill_postmaster(self.pgdata)

    def destroy(self) -> None:
        """Stop the server and delete its cluster (throwaway clusters of tests and benchmarks)."""
        self.stop("immediate")
        remove_cluster(self.data_dir, self.pgdata)
        self._port_file.unlink(missing_ok=True)
