"""Real PostgreSQL and MQTT broker for the test run: the configured ones, or throwaway embedded ones."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from app.embedded import EmbeddedBroker, EmbeddedPostgres


@dataclass
class Servers:
    admin_db_url: str
    database_url: str
    mqtt_url: str
    postgres: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None
    databases: list[str] = field(default_factory=list)

    def _psql(self, sql: str) -> None:
        subprocess.run(["psql", self.admin_db_url, "-qtAc", sql], check=True, capture_output=True)

    def new_database(self, prefix: str = "coldchain_test") -> str:
        """A fresh, empty database on the same server; dropped when the run ends."""
        name = f"{prefix}_{secrets.token_hex(4)}"
        self._psql(f"CREATE DATABASE {name}")
        self.databases.append(name)
        parts = urlsplit(self.admin_db_url)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def close(self) -> None:
        for name in self.databases:
            with contextlib.suppress(subprocess.CalledProcessError):
                self._psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if self.broker:
            self.broker.stop()
        if self.postgres:
            self.postgres.stop()


def start(tmp: Path) -> Servers:
    db_url = os.environ.get("DATABASE_URL")
    mqtt_url = os.environ.get("MQTT_URL")
    postgres = broker = None
    if not db_url:
        postgres = EmbeddedPostgres(tmp / "postgres")
        db_url = postgres.start()
    if not mqtt_url:
        broker = EmbeddedBroker(tmp / "mqtt")
        mqtt_url = broker.start()
    admin = urlunsplit(urlsplit(db_url)._replace(path="/postgres"))
    servers = Servers(admin_db_url=admin, database_url="", mqtt_url=mqtt_url,
                      postgres=postgres, broker=broker)
    servers.database_url = servers.new_database()
    return servers
