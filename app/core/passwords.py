"""Passwords of people: Argon2id hashes (argon2-cffi) and the policy a new password must meet.

Policy (NIST SP 800-63B §5.1.1.2): at least 12 characters, at most 128; not one of the 30 000
most common passwords (the list zxcvbn ships, MIT licence); and not guessable from common words,
keyboard patterns, repetitions, dates or the account's own email and name (zxcvbn's estimate
below "safely unguessable", score 3). No composition rules, no forced rotation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 12
MAX_LENGTH = 128
MIN_SCORE = 3

# argon2-cffi's defaults are RFC 9106's second recommendation for Argon2id (t=3, 64 MiB, p=4).
_hasher = PasswordHasher()


@cache
def _common() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def weakness(password: str, context: Iterable[str] = ()) -> str | None:
    """Why `password` may not be used (None: it may); `context`: the account's email and name."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    if password.lower() in _common():
        return "is one of the most common passwords"
    words = [w for value in context
             for w in (value, value.split("@")[0], *value.replace("@", " ").replace(".", " ").split())]
    estimate = zxcvbn(password, user_inputs=[*words, "coldchain"], max_length=MAX_LENGTH)
    if estimate["score"] < MIN_SCORE:
        hint = (estimate["feedback"].get("warning") or "").rstrip(".").lower()
        return f"is too easy to guess ({hint})" if hint else "is too easy to guess"
    return None


def hash_password_sync(password: str) -> str:
    return _hasher.hash(password)


async def hash_password(password: str) -> str:
    """The Argon2id hash (PHC string); computed off the event loop (~50 ms of CPU)."""
    return await asyncio.to_thread(_hasher.hash, password)


def verify_password_sync(stored_hash: str, password: str) -> bool:
    """Whether `password` matches; a malformed stored hash never matches."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored_hash: str, password: str) -> bool:
    return await asyncio.to_thread(verify_password_sync, stored_hash, password)


@cache
def _decoy_hash() -> str:
    return _hasher.hash("no account has this password: it only costs the same time")


async def burn_verification(password: str) -> None:
    """Spend the time a verification takes (an unknown email must not answer faster)."""
    await verify_password(_decoy_hash(), password)
