"""A benchmark's own database: on DATABASE_URL's server (a superuser's URL) or, unset, on a
throwaway embedded PostgreSQL; created fresh, dropped at the end."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg


@contextlib.contextmanager
def server(url: str | None = None) -> Iterator[str]:
    """The server's admin URL (database `postgres`): `url`'s, else DATABASE_URL's, else a
    throwaway embedded server's (its superuser)."""
    url, postgres = url or os.environ.get("DATABASE_URL"), None
    if not url:
        from app.embedded import EmbeddedPostgres

        postgres = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="ccbench-")) / "pg",
                                    throwaway=True)
        postgres.start()
        url = postgres.superuser_url
    try:
        yield urlunsplit(urlsplit(url)._replace(scheme="postgresql", path="/postgres"))
    finally:
        if postgres is not None:
            postgres.destroy()


async def create_database(admin: str, prefix: str = "coldchain_bench") -> str:
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))


async def drop_database(admin: str, url: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {urlsplit(url).path[1:]} WITH (FORCE)")
    finally:
        await conn.close()
