"""`SmtpAddress`: the one parser of COLDCHAIN_SMTP_URL (settings, the mail delivery loop)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

Security = Literal["plain", "starttls", "tls"]
# scheme → (security, default port): submission with STARTTLS on 587, implicit TLS on 465 (RFC 8314).
SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("plain", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}


@dataclass(frozen=True, slots=True)
class SmtpAddress:
    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line

    @classmethod
    def parse(cls, url: str) -> SmtpAddress:
        """`smtp://[user:pass@]host[:port]` (no TLS, port 25), `smtp+starttls://…` (STARTTLS
        required, 587) or `smtps://…` (implicit TLS, 465); user and password percent-decoded.
        ValueError says what is wrong."""
        parts = urlsplit(url.strip())
        scheme = SCHEMES.get(parts.scheme.lower())
        if scheme is None:
            raise ValueError("COLDCHAIN_SMTP_URL must be an smtp://, smtp+starttls:// or smtps:// URL")
        if not parts.hostname:
            raise ValueError("COLDCHAIN_SMTP_URL names no mail server (smtp://host[:port])")
        try:
            port = parts.port
        except ValueError as exc:  # not a number, or out of 0-65535
            raise ValueError("COLDCHAIN_SMTP_URL has an invalid port") from exc
        if parts.username and not parts.password:
            raise ValueError("COLDCHAIN_SMTP_URL names a user without a password (user:pass@host)")
        security, default_port = scheme
        return cls(
            parts.hostname, port or default_port, security,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )

    def __str__(self) -> str:
        return f"{self.host}:{self.port} ({self.security})"
