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


# NAT64 well-known prefix (RFC 6052): the last 32 bits are an IPv4 address the gateway connects to.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _own_problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
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


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address carries to the IPv4 internet, with the mapping's name."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip.teredo is not None:
        return "Teredo", ip.teredo[1]
    if ip in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(address: str) -> str | None:
    """Why an IP address is not a public target (None when it is globally routable).

    IPv6 forms that carry an IPv4 address (mapped, 6to4 `2002::/16`, Teredo, NAT64) are judged by
    that address too: a relay or gateway would otherwise carry the request into private space.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and (embedded := _embedded_ipv4(ip)) is not None:
        mapping, ipv4 = embedded
        problem = _own_problem(ipv4)
        if problem is not None:
            return problem if mapping == "IPv4-mapped" else f"{mapping} mapping of {problem}"
        if mapping == "IPv4-mapped":
            return None
    return _own_problem(ip)


async def resolve(host: str, port: int) -> list[str]:
    """Every address the host name resolves to, in the resolver's order of preference (an IP
    literal resolves to itself)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrl(f"host '{host}' does not resolve") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal(host: str, address: str) -> UnsafeUrl | None:
    """The refusal of one resolved address of `host` (None for a public one).

    The message names the kind of address but not the address: it is shown to the site key that
    chose the URL, and our resolver's view of internal names is none of its business.
    """
    problem = address_problem(address)
    if problem is None:
        return None
    return UnsafeUrl(
        f"'{host}' resolves to a non-public address ({problem}); "
        "set COLDCHAIN_WEBHOOK_ALLOW_PRIVATE=true to allow such targets"
    )


def default_port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme.lower() == "https" else 80)


async def check_url(url: str, *, allow_private: bool) -> None:
    """Raise UnsafeUrl unless `url` is http(s) and (unless allowed) every address of its host is
    public. A check at subscription time only: delivery checks each connection's own lookup."""
    parts = check_syntax(url)
    if allow_private:
        return
    host = parts.hostname or ""
    for address in await resolve(host, default_port(parts)):
        if (refused := refusal(host, address)) is not None:
            raise refused


def endpoint_key(url: str) -> str:
    """The endpoint a URL belongs to for concurrency limits: scheme://host:port."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{default_port(parts)}"
