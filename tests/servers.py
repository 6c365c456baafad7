"""Real PostgreSQL and MQTT broker for the test run: the configured ones, or throwaway embedded ones.

Each test database has the production's roles: an owner (migrations, tampering tests) and a
service role that owns nothing (the code under test); the superuser only creates, cleans and drops.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from app.embedded import EmbeddedBroker, EmbeddedPostgres


@dataclass(frozen=True)
class Database:
    name: str
    superuser_url: str
    owner_url: str
    url: str  # the service's role


@dataclass
class Servers:
    admin_db_url: str
    mqtt_url: str
    postgres: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None
    databases: list[Database] = field(default_factory=list)

    @property
    def database(self) -> Database:
        """The run's database (the first one made)."""
        return self.databases[0]

    @property
    def database_url(self) -> str:
        return self.database.url

    def _psql(self, sql: str) -> None:
        subprocess.run(["psql", self.admin_db_url, "-v", "ON_ERROR_STOP=1", "-qtAc", sql],
                       check=True, capture_output=True)

    def _url(self, user: str, password: str, name: str) -> str:
        parts = urlsplit(self.admin_db_url)
        host = parts.hostname or "127.0.0.1"
        netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc, path=f"/{name}"))

    def new_database(self, prefix: str = "coldchain_test") -> Database:
        """A fresh, empty database with its own owner and service roles; dropped when the run ends."""
        name = f"{prefix}_{secrets.token_hex(4)}"
        password = secrets.token_hex(16)  # servers that do not trust local connections want one
        self._psql(f"CREATE ROLE {name}_owner LOGIN PASSWORD '{password}'; "
                   f"CREATE ROLE {name}_app LOGIN PASSWORD '{password}'")
        self._psql(f"CREATE DATABASE {name} OWNER {name}_owner")
        database = Database(
            name, urlunsplit(urlsplit(self.admin_db_url)._replace(path=f"/{name}")),
            self._url(f"{name}_owner", password, name), self._url(f"{name}_app", password, name),
        )
        self.databases.append(database)
        return database

    def close(self) -> None:
        for database in self.databases:
            with contextlib.suppress(subprocess.CalledProcessError):
                self._psql(f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)")
                self._psql(f"DROP ROLE IF EXISTS {database.name}_owner, {database.name}_app")
        if self.broker:
            self.broker.stop()
        if self.postgres:
            self.postgres.destroy()


def start(tmp: Path) -> Servers:
    """DATABASE_URL, when set, must be a superuser's (it creates the run's roles and database)."""
    db_url = os.environ.get("DATABASE_URL")
    mqtt_url = os.environ.get("MQTT_URL")
    postgres = broker = None
    if not db_url:
        postgres = EmbeddedPostgres(tmp / "postgres", throwaway=True)
        postgres.start()
        db_url = postgres.superuser_url
    if not mqtt_url:
        broker = EmbeddedBroker(tmp / "mqtt")
        mqtt_url = broker.start()
    admin = urlunsplit(urlsplit(db_url)._replace(path="/postgres"))
    servers = Servers(admin_db_url=admin, mqtt_url=mqtt_url, postgres=postgres, broker=broker)
    servers.new_database()
    return servers
