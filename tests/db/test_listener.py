"""The one LISTEN loop: notifications arrive, and it comes back after a cut or a silent network."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.listen import Listener
from app.core.settings import Settings

CHANNEL = "cctest_listener"


class Recorder:
    def __init__(self) -> None:
        self.payloads: list[str] = []
        self.gaps = 0
        self.changed = asyncio.Event()

    def notify(self, payload: str) -> None:
        self.payloads.append(payload)
        self.changed.set()

    def gap(self) -> None:
        self.gaps += 1
        self.changed.set()

    async def until(self, condition: object, within: float = 15.0) -> None:
        async with asyncio.timeout(within):
            while not condition():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()


async def _notify(engine: AsyncEngine, payload: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": payload})


async def _notify_until_heard(engine: AsyncEngine, rec: Recorder, payload: str) -> None:
    """NOTIFY until the listener hears it (one sent while it reconnects is lost by design)."""
    async with asyncio.timeout(15):
        while payload not in rec.payloads:
            await _notify(engine, payload)
            with contextlib.suppress(TimeoutError):
                await rec.until(lambda: payload in rec.payloads, within=0.2)


async def test_notifications_arrive_in_order(settings: Settings, engine: AsyncEngine) -> None:
    rec = Recorder()
    listener = Listener(settings.database_url or "", CHANNEL, rec.notify, on_gap=rec.gap)
    async with listener.running():
        await asyncio.wait_for(listener.listening.wait(), 15)
        for n in range(3):
            await _notify(engine, f"n{n}")
        await rec.until(lambda: len(rec.payloads) == 3)
    assert rec.payloads == ["n0", "n1", "n2"]
    assert (rec.gaps, listener.reconnects, listener.listening.is_set()) == (0, 0, False)


async def test_a_cut_connection_is_replaced_and_the_gap_announced(
    settings: Settings, engine: AsyncEngine, superuser_engine: AsyncEngine,
) -> None:
    rec = Recorder()
    listener = Listener(settings.database_url or "", CHANNEL, rec.notify, on_gap=rec.gap,
                        retry_s=0.05)
    async with listener.running():
        await asyncio.wait_for(listener.listening.wait(), 15)
        async with superuser_engine.begin() as conn:  # as a failover or an operator would
            cut = (await conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :name"), {"name": listener.application_name})).scalar()
        assert cut == 1
        await rec.until(lambda: rec.gaps == 1)
        await _notify_until_heard(engine, rec, "after")
    assert (rec.gaps, listener.reconnects) == (1, 1)


@contextlib.asynccontextmanager
async def _proxy(host: str, port: int) -> AsyncIterator[tuple[int, list[asyncio.Event]]]:
    """A TCP relay whose connections can each be frozen: bytes stop, the sockets stay open,
    as on a network that silently drops everything."""
    thawed: list[asyncio.Event] = []
    pumps: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   flowing: asyncio.Event) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                await flowing.wait()
                writer.write(data)
                await writer.drain()
            writer.close()  # pass the end of the stream on

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, port)
        writers.extend((writer, up_writer))
        flowing = asyncio.Event()
        flowing.set()
        thawed.append(flowing)
        for task in (pump(reader, up_writer, flowing), pump(up_reader, writer, flowing)):
            pumps.add(asyncio.create_task(task))

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], thawed
    finally:
        server.close()
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        for writer in writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await server.wait_closed()


async def test_a_silent_connection_is_noticed_and_replaced(
    settings: Settings, engine: AsyncEngine,
) -> None:
    parts = urlsplit(settings.database_url or "")
    async with _proxy(parts.hostname or "127.0.0.1", parts.port or 5432) as (port, connections):
        netloc = parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{port}"
        rec = Recorder()
        listener = Listener(urlunsplit(parts._replace(netloc=netloc)), CHANNEL, rec.notify,
                            on_gap=rec.gap, retry_s=0.05, check_s=0.3)
        async with listener.running():
            await asyncio.wait_for(listener.listening.wait(), 15)
            silenced = len(connections)
            for flowing in connections:
                flowing.clear()  # the network goes silent; nothing is closed
            await rec.until(lambda: rec.gaps == 1)
            assert len(connections) > silenced  # listening again on a new connection
            await _notify_until_heard(engine, rec, "through the new connection")
        assert listener.reconnects == 1


async def test_it_keeps_trying_while_the_server_is_unreachable() -> None:
    attempts, tried = 0, asyncio.Event()

    async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1  # no PostgreSQL here: every connection is closed at once
        writer.close()
        if attempts == 3:
            tried.set()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        listener = Listener(f"postgresql://nobody@127.0.0.1:{port}/none", CHANNEL,
                            lambda _p: None, retry_s=0.02, max_retry_s=0.05)
        task = asyncio.create_task(listener.run())
        await asyncio.wait_for(tried.wait(), 15)  # a third attempt after two failed ones
        assert (task.done(), listener.listening.is_set()) == (False, False)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
