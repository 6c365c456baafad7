"""API keys: generation, hashing at rest, and the principal a request acts as."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

KEY_PREFIX = "cc"
# Roles that see every site's shipments; any other role sees only what its own site allows.
ALL_SITES_ROLES = frozenset({"admin", "coordinator", "qp", "system"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: an API key (or the bootstrap admin key), or a person signed in with a
    session (`user_id`, `session_id`), with its role and site scope."""

    actor: str
    role: str
    site_id: uuid.UUID | None = None
    key_id: uuid.UUID | None = None
    expires_at: datetime | None = None
    user_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None

    @property
    def is_site(self) -> bool:
        return self.role == "site"

    @property
    def sees_all_sites(self) -> bool:
        return self.role in ALL_SITES_ROLES

    @property
    def own_site(self) -> uuid.UUID | None:
        """The one site whose data a site key may see; None (nothing at all) for a site key
        without a site, and for every role that does not see all sites."""
        return self.site_id if self.is_site else None

    def sees(self, origin_site_id: uuid.UUID, destination_site_id: uuid.UUID) -> bool:
        """Whether this principal may see a shipment between these sites (site keys: their own).

        Fails closed: a role not known to see everything sees only its own site's, and a
        principal without a site sees nothing."""
        if self.sees_all_sites:
            return True
        return self.own_site is not None and self.own_site in (origin_site_id, destination_site_id)

    def sees_site(self, site_id: uuid.UUID | None) -> bool:
        """Whether this principal may see an object scoped to `site_id` (None: not site-scoped,
        which only roles that see every site may see)."""
        return self.sees_all_sites or (self.own_site is not None and self.own_site == site_id)


SYSTEM = Principal(actor="system", role="system")


def new_api_key() -> tuple[str, str]:
    """A fresh key `cc_<prefix>_<secret>` and its public prefix (shown in lists and logs)."""
    prefix = secrets.token_hex(4)
    return f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}", prefix


_HEX = frozenset("0123456789abcdef")


def key_prefix(key: str) -> str | None:
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 8 or not _HEX.issuperset(parts[1]):
        return None
    return parts[1]


def hash_key(key: str) -> bytes:
    # Keys carry 256 bits of entropy: a plain SHA-256 is not brute-forceable, and is fast per request.
    return hashlib.sha256(key.encode()).digest()


def keys_equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class RateLimiter:
    """Per-key token buckets: `burst` requests at once, refilled at `rate_per_s`; clock passed in.

    The bucket map is bounded: beyond `max_keys`, the stalest buckets are forgotten (a forgotten key
    starts again with a full bucket, which errs on the side of serving authenticated callers).
    """

    __slots__ = ("rate_per_s", "burst", "max_keys", "_buckets")

    def __init__(self, rate_per_s: float, burst: int, *, max_keys: int = 10_000) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("a rate limiter needs rate_per_s > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated_at)

    def acquire(self, key: str, now: float) -> float:
        """Take one token for `key` at monotonic time `now`: 0.0 if allowed, else seconds to wait."""
        tokens, updated = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - updated) * self.rate_per_s)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate_per_s
        self._buckets[key] = (tokens, now)  # re-inserted last: dict order is recency order
        if len(self._buckets) > self.max_keys:
            del self._buckets[next(iter(self._buckets))]
        return wait
