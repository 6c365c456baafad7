"""Webhook target URLs: http(s) only; private, loopback and link-local targets refused unless allowed."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

MAX_URL_LENGTH = 2048


class UnsafeUrl(ValueError):
    """A URL we will not POST to; the message says why."""


def check_syntax(url: str) -> SplitResult:
    """An absolute http(s) URL with a host, without credentials or fragment."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise UnsafeUrl("contains whitespace or control characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise UnsafeUrl("only http:// and https:// URLs are accepted")
    if not parts.hostname:
        raise UnsafeUrl("no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("credentials in the URL are not accepted (the signature authenticates us)")
    if parts.fragment:
        raise UnsafeUrl("a fragment is never sent; remove it")
    try:
        parts.port  # noqa: B018 - raises on a malformed or out-of-range port
    except ValueError as exc:
        raise UnsafeUrl(f"bad port: {exc}") from exc
    return parts


def address_problem(address: str) -> str | None:
    """Why an IP address is not a public target (None when it is globally routable)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    checks = (
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_multicast, "multicast"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "not globally routable"),
    )
    return next((reason for bad, reason in checks if bad), None)


async def resolve(host: str, port: int) -> list[str]:
    """Every address the host name resolves to (an IP literal resolves to itself)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrl(f"host '{host}' does not resolve") from exc
    return sorted({str(info[4][0]) for info in infos})


async def check_url(url: str, *, allow_private: bool) -> None:
    """Raise UnsafeUrl unless `url` is http(s) and (unless allowed) every address of its host is public."""
    parts = check_syntax(url)
    if allow_private:
        return
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    for address in await resolve(host, port):
        problem = address_problem(address)
        if problem:
            raise UnsafeUrl(
                f"'{host}' resolves to {address} ({problem}); "
                "set COLDCHAIN_WEBHOOK_ALLOW_PRIVATE=true to allow such targets"
            )


def endpoint_key(url: str) -> str:
    """The endpoint a URL belongs to for concurrency limits: scheme://host:port."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"
