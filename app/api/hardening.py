"""Request hardening at the edge: body size limit, NUL rejection, per-key rate limiter, safe headers."""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import multipart, problems
from app.api.errors import problem_response
from app.core.security import RateLimiter
from app.core.settings import Settings

# PostgreSQL text and JSONB cannot hold NUL: refuse it at the edge instead of failing in the database.
_NUL_ESCAPE = b"\\u0000"
# Uploads the route reads as they stream (app/api/multipart.py bounds them): only their declared
# length is checked here, against the upload limit, and nothing is buffered.
_STREAMED = re.compile(r"^/api/v1/shipments/[^/]+/documents/?$")


class RequestGuard:
    """Pure ASGI middleware: bounded, buffered request bodies and NUL-free input.

    The body is read up front (at most `max_bytes`, so memory is bounded) and replayed to the app:
    a declared or actual size over the limit is a 413 problem before any handler runs. A document
    upload (binary, up to `max_upload_bytes`) is the exception: only its declared length is
    checked here and the handler bounds the stream as it parses it (app/api/multipart.py).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_safe_headers(scope, send)
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
            await _reject(scope, send, 422, "NUL characters are not accepted in the URL", "url")
            return
        declared = _declared_length(scope)
        if declared == -1:
            await _reject(scope, send, 400, "Content-Length is not a valid number", None)
            return
        if scope.get("method") == "POST" and _STREAMED.match(scope.get("path", "")):
            if declared is not None and declared > self.max_upload_bytes:
                await self._too_large(scope, send, self.max_upload_bytes)
                return
            await self.app(scope, receive, send)
            return
        if declared is not None and declared > self.max_bytes:
            await self._too_large(scope, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if _NUL_ESCAPE in body.lower():
            await _reject(scope, send, 422, "NUL characters (\\u0000) are not accepted", "body")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, send: Send, limit: int | None = None) -> None:
        limit = limit or self.max_bytes
        await _reject(scope, send, 413, f"the request body exceeds {limit} bytes", None,
                      max_bytes=limit)


def _declared_length(scope: Scope) -> int | None:
    """Content-Length as a number, None when absent, -1 when malformed."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


async def _reject(
    scope: Scope, send: Send, status: int, detail: str, field: str | None, **extra: Any
) -> None:
    titles = {400: ("Bad request", "bad-request"), 413: ("Request too large", "too-large"),
              422: ("Invalid request", "validation")}
    title, slug = titles[status]
    if field is not None:
        extra["errors"] = [{"field": field, "message": detail}]
    response = problem_response(Request(scope), status, title, detail, slug, **extra)
    await response(scope, _drain_receive, send)


async def _drain_receive() -> Message:
    return {"type": "http.disconnect"}


def _with_safe_headers(scope: Scope, send: Send) -> Send:
    """`nosniff` everywhere; API answers (keys, patient-adjacent data) are never cached."""
    no_store = scope.get("path", "").startswith("/api/")

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {name.lower() for name, _ in headers}
            if b"x-content-type-options" not in names:
                headers.append((b"x-content-type-options", b"nosniff"))
            if no_store and b"cache-control" not in names:
                headers.append((b"cache-control", b"no-store"))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


def install(app: FastAPI, settings: Settings) -> None:
    """Add the request guard (outermost), the limiters read by `get_principal` (requests per key,
    failed authentications per client address) and the problem+json schema in OpenAPI."""
    problems.install(app)
    app.add_middleware(RequestGuard, max_bytes=settings.max_request_bytes,
                       max_upload_bytes=settings.max_document_bytes + multipart.OVERHEAD_BYTES)
    app.state.rate_limiter = (
        RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
        if settings.rate_limit_per_s > 0 else None
    )
    app.state.auth_failures = (
        RateLimiter(settings.auth_failure_per_min / 60, settings.auth_failure_burst)
        if settings.auth_failure_per_min > 0 else None
    )
    app.state.monotonic = time.monotonic  # the limiters' clock (tests move it)
