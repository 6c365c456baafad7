"""The API on a real uvicorn server on a free 127.0.0.1 port, inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from app.api.main import create_app
from app.core.settings import Settings
from app.runtime import uvicorn_config


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The test runner owns the process's signals.
        yield


@contextlib.asynccontextmanager
async def running(settings: Settings, engine: AsyncEngine) -> AsyncIterator[str]:
    """Yield the base URL of a live server; stop it (bounded) on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn_config(
        settings, create_app(settings, engine=engine), host="127.0.0.1", port=port,
        log_level="warning", timeout_graceful_shutdown=2,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            raise RuntimeError("the test server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()
