"""A site's webhook receiver on 127.0.0.1: verifies signatures, records events, fails on cue."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import ssl
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# What the receiver does with the next request: answer with an HTTP status, hold the request
# without answering ("stall": the sender times out), or drop the connection ("close").
OK, STALL, CLOSE = "200", "stall", "close"


def verify_signature(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The Standard Webhooks check, as a site would write it (no timestamp tolerance here)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        sig.startswith("v1,") and hmac.compare_digest(sig[3:], expected)
        for sig in headers["webhook-signature"].split()
    )


@dataclass(frozen=True, slots=True)
class Received:
    webhook_id: str
    timestamp: int
    signature: str
    body: bytes
    path: str
    verified: bool
    action: str
    at: float  # time.monotonic()
    headers: dict[str, str]

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """`async with Receiver(...) as r:` serves on 127.0.0.1; `r.url` is where to subscribe."""

    def __init__(
        self, secrets: Sequence[str] = (), *, port: int = 0, stall_s: float = 60.0,
        delay_s: float = 0.0, tls: ssl.SSLContext | None = None, error_body: bytes = b"",
    ) -> None:
        self.secrets = list(secrets)
        self.tls = tls  # serve HTTPS with this context (its sni_callback sees the server name)
        self.error_body = error_body  # the body of non-2xx answers (what an error page would say)
        self.delay_s = delay_s  # how long a 2xx/4xx/5xx answer takes (a real site does some work)
        self.script: deque[str] = deque()  # actions for the next requests, then OK
        self.stall_s = stall_s
        self.requests: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.release = asyncio.Event()  # set: stalled requests are dropped at once
        self._port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._delivered: dict[str, Received] = {}
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> Receiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    def url(self, path: str = "/hooks/coldchain") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self._port}{path}"

    def fail_next(self, *actions: str) -> None:
        self.script.extend(actions)

    @property
    def delivered(self) -> dict[str, Received]:
        """Events answered 2xx with a valid signature, by webhook-id (the first such request)."""
        return self._delivered

    async def start(self) -> None:
        """Listen (again, on the same port after `refuse()`)."""
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self._port, reuse_address=True, ssl=self.tls
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def refuse(self) -> None:
        """Stop listening: connections are refused until `start()`."""
        await self.stop()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def wait_delivered(self, count: int, within_s: float = 10.0) -> None:
        async with asyncio.timeout(within_s), self._changed:
            await self._changed.wait_for(lambda: len(self._delivered) >= count)

    async def wait_requests(self, count: int, within_s: float = 10.0) -> None:
        async with asyncio.timeout(within_s), self._changed:
            await self._changed.wait_for(lambda: len(self.requests) >= count)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        request_line = await reader.readline()
        if not request_line:
            return False
        _, path, _ = request_line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            action = await self._record(
                headers, body, path, self.script.popleft() if self.script else OK)
            if action == CLOSE:
                return False
            if action == STALL:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.release.wait(), self.stall_s)
                return False
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            body = b"" if action.startswith("2") else self.error_body
            writer.write(f"HTTP/1.1 {action} X\r\ncontent-length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
            return headers.get("connection", "").lower() != "close"
        finally:
            self.in_flight -= 1

    async def _record(self, headers: dict[str, str], body: bytes, path: str, action: str) -> str:
        """Keep the request; the action it gets (a receiver with secrets refuses what it cannot
        verify: 401)."""
        try:
            verified = any(verify_signature(s, headers, body) for s in self.secrets)
            timestamp = int(headers["webhook-timestamp"])
        except (KeyError, ValueError):
            verified, timestamp = False, 0
        if self.secrets and not verified and action.startswith("2"):
            action = "401"  # a site rejects what it cannot verify
        received = Received(
            headers.get("webhook-id", ""), timestamp, headers.get("webhook-signature", ""), body,
            path, verified, action, time.monotonic(), headers,
        )
        self.requests.append(received)
        if verified and action.startswith("2"):
            self._delivered.setdefault(received.webhook_id, received)
        async with self._changed:
            self._changed.notify_all()
        return action

