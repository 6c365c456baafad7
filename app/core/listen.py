"""`Listener`: PostgreSQL LISTEN on a dedicated connection that survives restarts and silence.

Used by every process that reacts to NOTIFY (the API's live stream hub, the alerts worker, the
webhook delivery loops). Notifications sent while no connection listens are lost, so whoever
uses one keeps a fallback: the workers poll, the stream tells its clients to refetch. `on_gap`
is called whenever listening resumes after an interruption, for exactly that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import asyncpg

from app.core.db import plain_url

log = logging.getLogger(__name__)
_CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Listener:
    """LISTEN `channel` for as long as `run()` runs: reconnects with backoff (`retry_s` doubling
    up to `max_retry_s`), and checks a quiet connection every `check_s` with a query so that a
    half-open one (a network that went silent) is replaced too."""

    def __init__(
        self, database_url: str, channel: str, on_notify: Callable[[str], None], *,
        on_gap: Callable[[], None] | None = None, retry_s: float = 1.0,
        max_retry_s: float = 30.0, check_s: float = 30.0, connect_timeout_s: float = 10.0,
    ) -> None:
        self.dsn = plain_url(database_url)
        self.channel = channel
        self._on_notify = on_notify
        self._on_gap = on_gap
        self._retry_s, self._max_retry_s = retry_s, max_retry_s
        self._check_s, self._connect_timeout_s = check_s, connect_timeout_s
        # How the connection shows in pg_stat_activity (operators, tests cutting it).
        self.application_name = f"coldchain listen {channel}"
        self.listening = asyncio.Event()  # set while a connection listens
        self.reconnects = 0  # connections made after the first (a gap each)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._on_notify(payload)

    async def run(self) -> None:
        """Listen until cancelled."""
        delay, connected_before = self._retry_s, False
        while True:
            conn: asyncpg.Connection | None = None
            lost = asyncio.Event()
            healthy = False  # closed politely only when healthy (e.g. on cancellation)
            try:
                conn = await asyncpg.connect(
                    self.dsn, timeout=self._connect_timeout_s,
                    server_settings={"application_name": self.application_name})
                conn.add_termination_listener(lambda _c, ev=lost: ev.set())
                await conn.add_listener(self.channel, self._notified)
                healthy = True
                self.listening.set()
                if connected_before:
                    self.reconnects += 1
                    log.info("LISTEN %s: listening again", self.channel)
                    if self._on_gap is not None:
                        self._on_gap()
                connected_before = True
                delay = self._retry_s
                await self._until_lost(conn, lost)
                healthy = False
                log.warning("LISTEN %s: connection lost; reconnecting", self.channel)
            except _CONNECTION_ERRORS as exc:
                healthy = False
                log.warning("LISTEN %s: cannot listen (%s: %s); retrying in %.1f s",
                            self.channel, type(exc).__name__, exc, delay)
            finally:
                self.listening.clear()
                if conn is not None and not conn.is_closed():
                    if healthy:
                        with contextlib.suppress(*_CONNECTION_ERRORS):
                            await conn.close(timeout=2)
                    else:  # a dead or silent peer gets no chance to hold the loop up
                        conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_retry_s)

    async def _until_lost(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self._check_s)
                return
            await conn.fetchval("SELECT 1", timeout=self._check_s)  # raises when half-open

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Listener]:
        """Listen in the background for the duration of the block."""
        task = asyncio.create_task(self.run(), name=f"listen-{self.channel}")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
