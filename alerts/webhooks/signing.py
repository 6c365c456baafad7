"""Standard Webhooks signing (pure): `v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">`."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
from collections.abc import Sequence
from datetime import datetime

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
VERSION = "v1"


class InvalidSecret(ValueError):
    """A secret that is not `whsec_` followed by non-empty base64."""


def new_secret() -> str:
    """A fresh signing secret, `whsec_<base64 of 32 random bytes>`."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64-decoded part after `whsec_`."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret("a webhook secret starts with 'whsec_'")
    encoded = secret[len(SECRET_PREFIX):]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error as exc:
        raise InvalidSecret("the part after 'whsec_' is not base64") from exc
    if not key:
        raise InvalidSecret("empty webhook secret")
    return key


def unix_timestamp(at: datetime) -> int:
    """`webhook-timestamp`: whole Unix seconds of a tz-aware datetime."""
    if at.tzinfo is None:
        raise ValueError("naive datetime")
    return math.floor(at.timestamp())


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature over the exact body bytes."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{VERSION},{base64.b64encode(digest).decode()}"


def signature_header(secrets_: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature`: one signature per secret (two while a rotation overlaps), space separated."""
    if not secrets_:
        raise InvalidSecret("at least one secret is needed")
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)


def webhook_headers(
    secrets_: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers plus the JSON content type."""
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_, msg_id, timestamp, body),
    }


def verify(
    secrets_: Sequence[str], msg_id: str, timestamp: int, body: bytes, header: str
) -> bool:
    """True when any `v1` signature in `header` matches any of the secrets (constant-time compare)."""
    expected = [sign(s, msg_id, timestamp, body) for s in secrets_]
    return any(
        hmac.compare_digest(given.encode(), want.encode())
        for given in header.split()
        for want in expected
    )
