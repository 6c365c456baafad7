"""Outbound HTTP for webhooks: each connection resolves its host once, checks every address and
connects to a checked address, so no second lookup (a DNS rebinding answer) chooses the target.

Built on httpcore's public network-backend interface: the connection pool still sends the name
in `Host` and as TLS SNI (and verifies the certificate against it); only the TCP connect is ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator

import httpcore
import httpx

from alerts.webhooks.urls import UnsafeUrl, refusal, resolve

log = logging.getLogger(__name__)
Resolver = Callable[[str, int], Awaitable[list[str]]]


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolve once, refuse the host if any address is not public (unless allowed), connect to the
    checked addresses in the resolver's order of preference."""

    def __init__(
        self, *, allow_private: bool, resolver: Resolver = resolve,
        connector: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private = allow_private
        self._resolve = resolver
        self._connector = connector or httpcore.AnyIOBackend()

    async def connect_tcp(  # the signature is httpcore's interface
        self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving '{host}' took longer than {timeout} s") from exc
        if not self.allow_private:
            # Every address, not just the first: a host with one public and one private answer
            # would otherwise reach private space whenever the first connect fails.
            for address in addresses:
                if (refused := refusal(host, address)) is not None:
                    log.warning("webhook target %s refused: it resolves to %s", host, address)
                    raise refused
        failure: Exception = httpcore.ConnectError(f"'{host}' resolves to no address")
        for address in addresses:
            try:
                return await self._connector.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeUrl("webhooks are never sent over a local socket")

    async def sleep(self, seconds: float) -> None:
        await self._connector.sleep(seconds)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    """httpcore's exceptions as httpx's own (the two libraries use the same names)."""
    try:
        yield
    except (httpcore.NetworkError, httpcore.TimeoutException, httpcore.ProtocolError,
            httpcore.UnsupportedProtocol, httpcore.ProxyError) as exc:
        for cls in type(exc).__mro__:
            mapped = getattr(httpx, cls.__name__, None)
            if isinstance(mapped, type) and issubclass(mapped, httpx.TransportError):
                raise mapped(str(exc)) from exc
        raise


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes] | Iterable[bytes]) -> None:
        if not isinstance(stream, AsyncIterable):  # an async pool always streams asynchronously
            raise TypeError("httpcore returned a synchronous stream to an async pool")
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


class CheckedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore pool whose connections go through `CheckedBackend`."""

    def __init__(
        self, backend: CheckedBackend, *, limits: httpx.Limits,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify or httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme, host=request.url.raw_host, port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = await self._pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=response.status, headers=response.headers,
            stream=_ResponseStream(response.stream), extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def peer_address(response: httpx.Response) -> str | None:
    """The IP address the answer came from (None when the connection does not say)."""
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    return str(peer[0]) if isinstance(peer, tuple) and peer else None
