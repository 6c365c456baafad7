"""`BrokerAddress`: the one parser of broker URLs (settings, readiness, ingest, simulators)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

# scheme → TLS; `tcp`/`ssl` are the spellings paho and mosquitto tools use.
SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True}


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """`mqtt://[user:pass@]host[:port]` or `mqtts://…` (also `tcp://`, `ssl://`); user and
        password percent-decoded; port 1883, or 8883 with TLS. ValueError says what is wrong."""
        parts = urlsplit(url.strip())
        tls = SCHEMES.get(parts.scheme.lower())
        if tls is None:
            raise ValueError("MQTT_URL must be an mqtt:// or mqtts:// URL")
        if not parts.hostname:
            raise ValueError("MQTT_URL names no broker host (mqtt://host[:port])")
        try:
            port = parts.port
        except ValueError as exc:  # not a number, or out of 0-65535
            raise ValueError("MQTT_URL has an invalid port") from exc
        return cls(
            parts.hostname, port or (8883 if tls else 1883), tls,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"
