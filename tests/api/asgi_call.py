"""Call an ASGI app in-process; for an endless stream (SSE), read until a marker, then hang up.

httpx's ASGITransport buffers the whole answer, which never ends for a server-sent event stream;
the RBAC matrix needs every endpoint's status and body, streams included: a stream is read up to
its first chunk, or — with `until` — past the events `trigger` causes once the stream is live.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.types import ASGIApp, Message


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


async def call(
    app: ASGIApp, method: str, path: str, *, headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None, json_body: Any = None, wait_s: float = 10.0,
    until: bytes | None = None, live_marker: bytes = b'"listening":true',
    trigger: Callable[[], Awaitable[None]] | None = None,
    raw_body: tuple[bytes, str] | None = None,
) -> Answer:
    """`raw_body`: (the body, its content type) instead of JSON (a multipart upload)."""
    body = b"" if json_body is None else json.dumps(json_body).encode()
    if raw_body is not None:
        body = raw_body[0]
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    raw_headers += [(b"host", b"test"), (b"content-length", str(len(body)).encode())]
    if json_body is not None:
        raw_headers.append((b"content-type", b"application/json"))
    elif raw_body is not None:
        raw_headers.append((b"content-type", raw_body[1].encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": urlencode(params or {}).encode(), "headers": raw_headers,
        "client": ("127.0.0.1", 50000), "server": ("test", 80),
    }
    request_sent = False
    hang_up = asyncio.Event()
    finished = asyncio.Event()
    start: dict[str, Any] = {}
    chunks: list[bytes] = []
    triggered: list[asyncio.Task[None]] = []

    async def receive() -> Message:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await hang_up.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            streaming = dict(start.get("headers", [])).get(b"content-type", b"").startswith(
                b"text/event-stream")
            seen = b"".join(chunks)
            if trigger is not None and not triggered and live_marker in seen:
                triggered.append(asyncio.create_task(trigger()))
            if not message.get("more_body", False) or (
                    streaming and (until in seen if until is not None else any(chunks))):
                finished.set()

    task = asyncio.create_task(app(scope, receive, send))  # type: ignore[arg-type]
    waiter = asyncio.create_task(finished.wait())
    await asyncio.wait({task, waiter}, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    hang_up.set()
    for task_ in triggered:
        await task_  # a failing trigger fails the test
    try:
        await asyncio.wait_for(task, timeout=5.0)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    except Exception:  # noqa: BLE001 - the app already answered 500 (ServerErrorMiddleware re-raises)
        pass
    if "status" not in start:
        raise AssertionError(f"{method} {path} sent no response within {wait_s}s")
    headers_out = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
    return Answer(status=int(start["status"]), headers=headers_out, body=b"".join(chunks))
