"""A scripted DNS and a simulated Internet on 127.0.0.1: 'public' addresses served by local receivers.

Nothing leaves the machine: the connector maps each public address to a local port, passes
loopback through, and resolves a name (should anyone connect by name) through the same scripted
DNS, as the operating system would — which is what makes a second lookup observable.
"""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpcore

PUBLIC_IP = "93.184.216.34"


class _ReportedPeer(httpcore.AsyncNetworkStream):
    """A local stream that reports the public address it stands for (as the real one would).

    Signatures with `timeout` are httpcore's interface (hence the ASYNC109 exemptions)."""

    def __init__(self, stream: httpcore.AsyncNetworkStream, peer: tuple[str, int]) -> None:
        self._stream = stream
        self._peer = peer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        tls = await self._stream.start_tls(ssl_context, server_hostname, timeout)
        return _ReportedPeer(tls, self._peer)

    def get_extra_info(self, info: str) -> Any:
        return self._peer if info == "server_addr" else self._stream.get_extra_info(info)


class FakeInternet(httpcore.AsyncNetworkBackend):
    """`resolve` answers each lookup with the next scripted answer (the last one repeats);
    `connect_tcp` reaches public addresses through `hosting` (address → local port)."""

    def __init__(self, answers: list[list[str]], hosting: dict[str, int]) -> None:
        self.answers = list(answers)
        self.hosting = hosting
        self.lookups: list[str] = []
        self.connects: list[tuple[str, int]] = []
        self._local = httpcore.AnyIOBackend()

    async def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        try:
            address = str(ipaddress.ip_address(host))
        except ValueError:  # a connect by name looks the name up again
            address = (await self.resolve(host, port))[0]
        if ipaddress.ip_address(address).is_loopback:
            return await self._local.connect_tcp("127.0.0.1", port, timeout=timeout)
        if address not in self.hosting:
            raise httpcore.ConnectError(f"{address} is not reachable from the test network")
        stream = await self._local.connect_tcp("127.0.0.1", self.hosting[address], timeout=timeout)
        return _ReportedPeer(stream, (address, port))


def self_signed(directory: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A certificate for `name` (openssl CLI): the server's context and a client context trusting it."""
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout",
         str(key), "-out", str(cert), "-subj", f"/CN={name}", "-addext",
         f"subjectAltName=DNS:{name}"],
        check=True, capture_output=True,
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client
