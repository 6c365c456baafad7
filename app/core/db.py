"""Async SQLAlchemy engine and session factory, built by entry points, never at import."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def asyncpg_url(url: str) -> str:
    """`postgresql://…` as SQLAlchemy's asyncpg URL (SQLAlchemy 2.1 defaults to psycopg)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql+asyncpg"))


def plain_url(url: str) -> str:
    """The libpq form (`postgresql://…`) that asyncpg.connect() accepts."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": {"timezone": "UTC"}},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
