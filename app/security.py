"""API keys: generation, hashing at rest, and the principal a request acts as."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

KEY_PREFIX = "cc"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: an API key (or the bootstrap admin key) with its role and site scope."""

    actor: str
    role: str
    site_id: uuid.UUID | None = None
    key_id: uuid.UUID | None = None

    @property
    def is_site(self) -> bool:
        return self.role == "site"


SYSTEM = Principal(actor="system", role="system")


def new_api_key() -> tuple[str, str]:
    """A fresh key `cc_<prefix>_<secret>` and its public prefix (shown in lists and logs)."""
    prefix = secrets.token_hex(4)
    return f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}", prefix


def key_prefix(key: str) -> str | None:
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 8:
        return None
    return parts[1]


def hash_key(key: str) -> bytes:
    # Keys carry 256 bits of entropy: a plain SHA-256 is not brute-forceable, and is fast per request.
    return hashlib.sha256(key.encode()).digest()


def keys_equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
