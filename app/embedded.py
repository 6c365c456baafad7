"""Embedded PostgreSQL and MQTT broker for `make demo` and tests when no server is configured."""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


def _postgres_bin_dir() -> Path:
    """The pgserver wheel's PostgreSQL binaries, else a `pg_ctl` found on PATH."""
    try:
        from pgserver._commands import POSTGRES_BIN_PATH

        if (Path(POSTGRES_BIN_PATH) / "pg_ctl").exists():
            return Path(POSTGRES_BIN_PATH)
    except ImportError:  # pragma: no cover - pgserver is a dependency
        pass
    found = shutil.which("pg_ctl")
    if not found:
        raise RuntimeError("no PostgreSQL binaries: install the pgserver wheel or set DATABASE_URL")
    return Path(found).resolve().parent


def _service_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: when we are root, run it as an unprivileged user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "coldchain"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "coldchain"], check=True)
    return pwd.getpwnam("coldchain")


# The embedded cluster's roles: the owner of the schema (migrations) and the service's role, which
# owns nothing and gets its grants from `coldchain migrate` (app/core/db_roles.py).
OWNER_ROLE = "coldchain_owner"
SERVICE_ROLE = "coldchain_app"

_CREATE_ROLES = f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{OWNER_ROLE}') THEN
        CREATE ROLE {OWNER_ROLE} LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{SERVICE_ROLE}') THEN
        CREATE ROLE {SERVICE_ROLE} LOGIN;
    END IF;
END $$
"""

# Data directories from before the roles existed have everything owned by the bootstrap superuser
# (whose objects REASSIGN OWNED refuses to move): hand the database's objects to the owner role.
_ADOPT = f"""
DO $$
DECLARE item record;
BEGIN
    EXECUTE format('ALTER DATABASE %I OWNER TO {OWNER_ROLE}', current_database());
    ALTER SCHEMA public OWNER TO {OWNER_ROLE};
    FOR item IN SELECT c.oid::regclass AS name FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relowner = 'postgres'::regrole
              AND c.relkind IN ('r', 'p') LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO {OWNER_ROLE}', item.name);
    END LOOP;
    FOR item IN SELECT c.oid::regclass AS name FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relowner = 'postgres'::regrole AND c.relkind = 'S'
              AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid
                              AND d.deptype IN ('a', 'i')) LOOP
        EXECUTE format('ALTER SEQUENCE %s OWNER TO {OWNER_ROLE}', item.name);
    END LOOP;
    FOR item IN SELECT p.oid::regprocedure AS name FROM pg_proc p
            JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'public' AND p.proowner = 'postgres'::regrole LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO {OWNER_ROLE}', item.name);
    END LOOP;
END $$
"""


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL cluster in `data_dir`, listening on 127.0.0.1:`port` with trust auth.

    The database belongs to `coldchain_owner` (migrations); the service connects as
    `coldchain_app`, which owns nothing; `postgres` stays the cluster's superuser.
    """

    data_dir: Path
    port: int = 0
    database: str = "coldchain"
    _user: pwd.struct_passwd | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self._user = _service_user()
        port_file = self.data_dir.parent / f"{self.data_dir.name}.port"
        if not self.port:
            self.port = int(port_file.read_text()) if port_file.exists() else free_port()
        port_file.parent.mkdir(parents=True, exist_ok=True)
        port_file.write_text(str(self.port))

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

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self._user is not None:
            kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid}
        return subprocess.run(
            [str(_postgres_bin_dir() / args[0]), *args[1:]],
            check=check,
            capture_output=True,
            text=True,
            cwd="/",
            **kwargs,  # type: ignore[arg-type]
        )

    def _prepare_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._user is not None:
            for parent in [self.data_dir, *self.data_dir.parents]:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if parent != self.data_dir and not mode & 0o001:
                    parent.chmod(mode | 0o011)
            os.chown(self.data_dir, self._user.pw_uid, self._user.pw_gid)
        self.data_dir.chmod(0o700)

    def start(self) -> str:
        self._prepare_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                      "--encoding=UTF8", "--no-sync")
        if self._run("pg_ctl", "-D", str(self.data_dir), "status", check=False).returncode != 0:
            options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                       f"-c unix_socket_directories='{self.data_dir}' -c max_connections=200 "
                       "-c timezone=UTC")
            result = self._run("pg_ctl", "-D", str(self.data_dir), "-l",
                               str(self.data_dir / "server.log"), "-o", options, "-w", "-t", "60",
                               "start", check=False)
            if result.returncode != 0:
                raise RuntimeError(f"embedded PostgreSQL did not start: {result.stdout}{result.stderr}")
        wait_for_port(self.port)
        self.psql("postgres", _CREATE_ROLES)
        exists = self.psql("postgres", "SELECT 1 FROM pg_database WHERE datname = "
                           f"'{self.database}'").stdout.strip()
        if not exists:
            self.psql("postgres", f"CREATE DATABASE {self.database} OWNER {OWNER_ROLE}")
        self.psql(self.database, _ADOPT)
        log.info("embedded PostgreSQL on 127.0.0.1:%s (%s)", self.port, self.data_dir)
        return self.url

    def psql(self, database: str, sql: str) -> subprocess.CompletedProcess[str]:
        """Run SQL as the superuser (stops at the first error)."""
        return self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d",
                         database, "-v", "ON_ERROR_STOP=1", "-qtAc", sql)

    def stop(self, mode: str = "fast") -> None:
        if (self.data_dir / "PG_VERSION").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop", check=False)

    def kill(self) -> None:
        """SIGKILL the server and its backends (fault tests): the next start replays the WAL."""
        import psutil

        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            postmaster = psutil.Process(int(pid_file.read_text().splitlines()[0]))
            processes = [postmaster, *postmaster.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(processes, timeout=10)


def _mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    return found or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


@dataclass
class EmbeddedBroker:
    """Mosquitto (preferred, from PATH) or amqtt, on 127.0.0.1:`port` with a persistent store."""

    data_dir: Path
    port: int = 0
    use_mosquitto: bool | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.port = self.port or free_port()
        if self.use_mosquitto is None:
            self.use_mosquitto = _mosquitto_binary() is not None

    @property
    def supports_mqtt5(self) -> bool:
        """amqtt speaks MQTT 3.1.1 only: no MQTT 5 sessions and no shared subscriptions."""
        return bool(self.use_mosquitto)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        mosquitto = _mosquitto_binary()
        if self.use_mosquitto and mosquitto:
            conf = self.data_dir / "mosquitto.conf"
            conf.write_text(
                f"listener {self.port} 127.0.0.1\n"
                "allow_anonymous true\n"
                "persistence true\n"
                f"persistence_location {self.data_dir}/\n"
                "autosave_interval 10\n"
                # Loggers reconnect after long offline stretches: keep their queued QoS 1 messages.
                "max_queued_messages 1000000\n"
                "max_inflight_messages 1000\n"
                "max_packet_size 16777216\n"
                "persistent_client_expiration 14d\n"
                + ("user root\n" if os.geteuid() == 0 else "")
            )
            return [mosquitto, "-c", str(conf)]
        conf = self.data_dir / "amqtt.yaml"
        conf.write_text(
            "listeners:\n  default:\n    type: tcp\n"
            f"    bind: 127.0.0.1:{self.port}\n"
            "auth:\n  allow-anonymous: true\n"
        )
        return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]

    def start(self) -> str:
        command = self._command()
        with (self.data_dir / "broker.log").open("ab") as log_file:
            self.process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        wait_for_port(self.port)
        log.info("embedded MQTT broker on 127.0.0.1:%s", self.port)
        return self.url

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None
